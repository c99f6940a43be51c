"""`leadscore simulate`: write a simulated CRM (leads, events, goals, expenses) and its ground truth."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from leadscore.cli.app import app

console = Console()


class FileFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


@app.command()
def simulate(
    leads: int = typer.Option(20_000, "--leads", min=1, help="Number of leads."),
    reps: int = typer.Option(12, "--reps", min=1, help="Number of salespeople."),
    months: int = typer.Option(18, "--months", min=1, help="Length of the period, in months."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same data."),
    start: str = typer.Option("2024-01-01", "--start", help="First day of the period (UTC)."),
    out: Path = typer.Option(..., "--out", help="Folder to write into (created if missing)."),
    fmt: FileFormat = typer.Option(FileFormat.csv, "--format", help="File format."),
    flat: bool = typer.Option(
        False, "--flat-table", help="Also write leads_flat: one row per lead with a converted column (for --table)."
    ),
) -> None:
    """Simulate a CRM and write leads, events, goals, expenses and truth files to OUT.

    The truth file holds, for every Monday and every lead open then, the true probability that the lead is
    won within 90 days: the oracle a model can be compared with. `leadscore check OUT` reads the rest back.
    """
    from leadscore.simulation.simulator import simulate as run_simulation

    began = time.perf_counter()
    sim = run_simulation(n_leads=leads, n_reps=reps, months=months, seed=seed, start=start)
    written = sim.write(out, fmt.value, flat=flat)
    took = time.perf_counter() - began
    data = sim.data
    won = int((data.events["type"] == "won").sum())
    console.print(
        f"Simulated {len(data.leads):,} leads, {len(data.events):,} events, {won:,} won "
        f"({won / len(data.leads):.1%}) in {took:.1f} s; wrote {', '.join(p.name for p in written.values())} "
        f"to {out}"
    )
