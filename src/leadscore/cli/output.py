"""What the commands print: the candidates' table for people, one line of JSON for programs (NaN as null)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def print_json(value: Any) -> None:
    """Print ``value`` as one line of JSON, non-finite numbers as null and numpy values as numbers.

    Examples
    --------
    >>> print_json({"auc": float("nan"), "lift": [1.5, float("inf")]})
    {"auc":null,"lift":[1.5,null]}
    """
    from leadscore.data.records import to_json

    print(to_json(value).decode())


SHOWN_METRICS: tuple[tuple[str, str], ...] = (
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC"),
    ("log_loss", "log loss"),
    ("brier", "Brier"),
    ("ece", "ECE"),
    ("lift_top10", "lift@10%"),
    ("capture_top10", "capture@10%"),
    ("lift_top20", "lift@20%"),
    ("capture_top20", "capture@20%"),
)


def result_table(result) -> Table:
    """The candidates' validation metrics as a rich table, the chosen one starred (`leadscore train`, `demo`)."""
    table = Table(title="Candidates on the validation period (best log loss first)")
    table.add_column("candidate")
    table.add_column("calibration")
    for _, title in SHOWN_METRICS:
        table.add_column(title, justify="right")
    frame = result.table()
    for row in frame.itertuples(index=False):
        style = "bold green" if row.chosen else None
        cells = [
            f"{getattr(row, key):.4f}" if key != "lift_top10" and key != "lift_top20" else f"{getattr(row, key):.2f}"
            for key, _ in SHOWN_METRICS
        ]
        table.add_row(row.candidate + (" *" if row.chosen else ""), row.calibration, *cells, style=style)
    return table


def registered_line(registered) -> str:
    """What became of a registered version: champion or challenger, and the gate's reason (rich markup)."""
    verdict = "[green]champion[/green]" if registered.promoted else "[yellow]challenger[/yellow]"
    return f"registered as version {registered.version} -> {verdict}: {registered.reason}"
