"""`leadscore check`: load a data set through the contracts and say what is in it (or what is wrong).

Like every command module, this one imports pandas (through ``leadscore.data``) only when a command runs, so
``leadscore --help`` answers at once (``tests/test_cli_startup.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from leadscore.cli.app import app

if TYPE_CHECKING:
    from leadscore.data.contracts import CrmData
    from leadscore.data.io import ColumnMapping

console = Console()

MappingFileOption = typer.Option(None, "--mapping", help="YAML file mapping a foreign export onto the contracts.")
MapPairsOption = typer.Option(
    None, "--map", help="One mapping, table.ours=theirs (e.g. events.lead_id=case_id); repeatable."
)
TimezoneOption = typer.Option("UTC", "--timezone", help="Time zone of timestamps written without an offset.")


def mapping_from_options(mapping_file: Path | None, pairs: list[str] | None, timezone: str) -> ColumnMapping:
    """The column mapping given on the command line: a file, then ``--map`` pairs on top of it."""
    from leadscore.data.io import ColumnMapping

    base = ColumnMapping.from_file(mapping_file) if mapping_file else ColumnMapping()
    try:
        extra = ColumnMapping.from_pairs(pairs or [], timezone=timezone)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--map") from err
    return base.merged(extra)


def load_or_exit(data_dir: Path, mapping: ColumnMapping | None = None) -> CrmData:
    """Load a data set, or print every contract problem and exit with status 2."""
    from leadscore.data.contracts import ContractError
    from leadscore.data.io import load_dataset

    try:
        return load_dataset(data_dir, mapping)
    except (ContractError, FileNotFoundError, ValueError) as err:
        console.print(f"[red]Cannot load {data_dir}[/red]\n{err}")
        raise typer.Exit(code=2) from err


@app.command()
def check(
    data_dir: Path = typer.Argument(..., help="Folder with leads, events (and goals, expenses) files."),
    mapping_file: Path | None = MappingFileOption,
    map_pairs: list[str] | None = MapPairsOption,
    timezone: str = TimezoneOption,
) -> None:
    """Validate a CRM data set against the contracts and summarise it."""
    data = load_or_exit(data_dir, mapping_from_options(mapping_file, map_pairs, timezone))
    table = Table(title=f"{data_dir}: valid")
    for column in ("table", "rows", "from", "to"):
        table.add_column(column)
    spans = {"leads": "created_at", "events": "at", "goals": "start", "expenses": "at"}
    for name, time_column in spans.items():
        frame = getattr(data, name)
        times = frame[time_column]
        first, last = (str(times.min().date()), str(times.max().date())) if len(frame) else ("-", "-")
        table.add_row(name, f"{len(frame):,}", first, last)
    console.print(table)
    counts = data.events["type"].value_counts()
    console.print("event types: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
