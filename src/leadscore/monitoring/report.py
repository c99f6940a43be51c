"""The monitor's whole answer from a store, for the CLI, the API and notebooks: outcomes against promises and
the drift of the latest week, plus the reliability chart.

Examples
--------
>>> answer = monitor_store(repo.engine, now="2025-06-02", horizon_days=90, scorer=scorer)  # doctest: +SKIP
>>> answer.outcomes.weeks.tail(1)[["week", "resolved", "waiting", "roc_auc"]]  # doctest: +SKIP
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadscore.features.history import cutoff_timestamp
from leadscore.monitoring.drift import DriftReport, weekly_drift
from leadscore.monitoring.outcomes import OutcomeReport, outcome_report
from leadscore.monitoring.promises import load_closings, load_history


@dataclass
class MonitorReport:
    """Outcomes against promises, and the drift reports of the latest weeks (empty without a reference)."""

    outcomes: OutcomeReport
    drift: list[DriftReport]
    drift_note: str = ""

    def to_dict(self) -> dict:
        return {
            "outcomes": self.outcomes.to_dict(),
            "drift": [d.to_dict() for d in self.drift],
            "drift_note": self.drift_note,
        }


def last_monday(now) -> pd.Timestamp:
    """The latest Monday 00:00 UTC at or before ``now``: the end of the last whole week."""
    t = cutoff_timestamp(now).floor("D")
    return t - pd.Timedelta(days=t.day_of_week)


def monitor_store(
    engine,
    *,
    now,
    horizon_days: float,
    scorer=None,
    reference=None,
    data=None,
    drift_weeks: int = 1,
    model_version: str | None = None,
) -> MonitorReport:
    """Outcomes of every stored score (or those of ``model_version``) as of ``now``, and, given the ``scorer``
    in use, its ``reference`` and the store's ``data``, the drift reports of the last ``drift_weeks`` whole
    weeks."""
    history = load_history(engine, model_version=model_version)
    outcomes = outcome_report(history, load_closings(engine), now, horizon_days)
    if scorer is None or data is None:
        return MonitorReport(outcomes, [], "no model in use: no drift report")
    if reference is None:
        return MonitorReport(outcomes, [], f"model version {scorer.model_version} has no training reference")
    if scorer.card.source != "crm":
        return MonitorReport(outcomes, [], "a flat-table model: drift is measured on CRM data only")
    end = last_monday(now)
    cutoffs = [end - pd.Timedelta(weeks=k) for k in range(drift_weeks - 1, -1, -1)]
    return MonitorReport(outcomes, weekly_drift(scorer, data, reference, cutoffs))


def reliability_svg(bands: pd.DataFrame, path: str | Path | None = None, *, title: str = "Reliability") -> str:
    """The reliability chart (realised conversion against mean predicted probability per score band, with the
    95 % intervals and the diagonal) of an :class:`~leadscore.monitoring.outcomes.OutcomeReport`'s
    ``overall_bands`` (one line per model version) as SVG text; also written to ``path`` if given."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot()
    top = 0.05
    for version, rows in bands[bands["resolved"] > 0].groupby("model_version", sort=True):
        x, y = rows["mean_predicted"].to_numpy(float), rows["realised_rate"].to_numpy(float)
        err = [y - rows["lower"].to_numpy(float), rows["upper"].to_numpy(float) - y]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"version {version}")
        top = max(top, float(rows["upper"].max()), float(x.max()))
    top = min(1.0, top * 1.05)
    ax.plot([0, top], [0, top], linestyle="--", color="#a0aec0", label="promised = realised")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="mean promised probability", ylabel="realised conversion", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg")
    text = out.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text
