"""`leadscore report`: the funnel, salesperson performance and goal progress, as tables and PNG charts.

The views themselves are in :mod:`leadscore.cli.report_views`, imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from leadscore.cli.app import app
from leadscore.cli.data import (
    MapPairsOption,
    MappingFileOption,
    TimezoneOption,
    load_or_exit,
    mapping_from_options,
)

console = Console()


@app.command()
def report(
    data_dir: Path = typer.Option(..., "--data", help="Folder with leads, events, goals and expenses files."),
    period: str = typer.Option("month", "--period", help="The window reported: day, week or month to date."),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder the PNG charts are written to."),
    as_of: str | None = typer.Option(None, "--as-of", help="'Now' (UTC); by default the data set's last event."),
    mapping_file: Path | None = MappingFileOption,
    map_pairs: list[str] | None = MapPairsOption,
    timezone: str = TimezoneOption,
) -> None:
    """Print the funnel, salesperson performance and goal progress, and write their charts."""
    from leadscore.cli.report_views import build_report

    data = load_or_exit(data_dir, mapping_from_options(mapping_file, map_pairs, timezone))
    try:
        build_report(data, period, out, as_of)
    except ValueError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(code=2) from err
