"""The `leadscore` command. Each area's commands live in a module of their own beside this one."""

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


def _register() -> None:
    # Imported for their side effect of adding commands to `app`; one line per area.
    from leadscore.cli import (
        data,  # noqa: F401
        demo,  # noqa: F401
        model,  # noqa: F401
        report,  # noqa: F401
        service,  # noqa: F401
        simulate,  # noqa: F401
    )


_register()
