"""What the commands print: the candidates' table for people, JSON (non-finite numbers as null) for programs."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.table import Table


def json_ready(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, through dicts, lists and tuples.

    Examples
    --------
    >>> json_ready({"auc": float("nan"), "lift": [1.5, float("inf")]})
    {'auc': None, 'lift': [1.5, None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Print ``value`` as one line of JSON, non-finite numbers as null."""
    print(json.dumps(json_ready(value)))


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
