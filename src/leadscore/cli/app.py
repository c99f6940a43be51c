"""The `leadscore` command's Typer app: each area's module adds its commands to it (see ``__init__``)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="leadscore",
    help="Predictive lead scoring: simulate a CRM, build point-in-time features, train, score, report, serve.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Predictive lead scoring: simulate a CRM, build point-in-time features, train, score, report, serve."""
