"""The outcome figures logged to each model version's MLflow run, week by week, as outcomes accumulate.

Metrics ``monitor_<name>`` (:data:`~leadscore.monitoring.outcomes.LOGGED`: promises, resolved, waiting, realised
rate, mean predicted, ROC AUC, log loss, ECE) with ``step`` = the week's number (whole weeks since Monday
1970-01-05) and the week's Monday as the timestamp. Re-running is idempotent: a (metric, week) already logged
with the same value is not logged again; a week whose figures changed (more outcomes arrived) gets its new
value at the same step, so the run's history shows the figure settling as the week resolves.
"""

from __future__ import annotations

import math
import time

import pandas as pd

from leadscore.monitoring.outcomes import LOGGED, OutcomeReport, week_number
from leadscore.monitoring.reference import version_run_id
from leadscore.registry.store import connect

PREFIX = "monitor_"


def log_outcomes(report: OutcomeReport, uri: str | None = None) -> dict[str, int]:
    """Log ``report.weeks`` to each model version's run; return the number of values logged per version (0 when
    nothing changed). Versions the registry does not know (scores of a deleted version, say) are skipped."""
    from mlflow.entities import Metric

    client = connect(uri)
    logged: dict[str, int] = {}
    weeks = report.weeks.assign(step=week_number(report.weeks["week"])) if len(report.weeks) else report.weeks
    for version, rows in weeks.groupby("model_version", sort=True) if len(weeks) else ():
        try:
            run_id = version_run_id(str(version), uri)
        except Exception:  # noqa: BLE001 - not a registered version (or no registry): nothing to log it to
            continue
        now_ms = int(time.time() * 1000)
        new = []
        for name in LOGGED:
            key = PREFIX + name
            last = {}  # the latest value logged at each step
            for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)):
                last[m.step] = m.value
            for step, value in zip(rows["step"], rows[name], strict=True):
                value = float(value)
                if not math.isfinite(value):
                    continue
                if int(step) in last and math.isclose(last[int(step)], value, rel_tol=0, abs_tol=1e-12):
                    continue
                new.append(Metric(key=key, value=value, timestamp=now_ms, step=int(step)))
        for start in range(0, len(new), 1000):  # MLflow takes at most 1000 metrics a batch
            client.log_batch(run_id, metrics=new[start : start + 1000])
        logged[str(version)] = len(new)
    return logged


def logged_weeks(version: str, uri: str | None = None) -> pd.DataFrame:
    """What a version's run holds: one row per week (``step``) with the latest value of each metric."""
    client = connect(uri)
    run_id = version_run_id(version, uri)
    columns = {}
    for name in LOGGED:
        history = sorted(client.get_metric_history(run_id, PREFIX + name), key=lambda m: (m.step, m.timestamp))
        columns[name] = pd.Series({m.step: m.value for m in history}, dtype=float)
    return pd.DataFrame(columns).rename_axis("step").reset_index()
