"""Outcomes against promises: each stored score matched with what happened, per model version and week.

A score is a promise: "this lead converts within H days of the cutoff with probability p". Every score given to
a stored lead is in ``score_history`` with its model version and cutoff (the score keeper adds one whenever a
lead's score is first given, changes version or grade, or moves by half a point; ``POST /scores`` of stored
leads adds one per score).

The counting rule. A lead scored many times in a week is counted once for that week and model version: its
*last* score (by ``scored_at``) whose cutoff falls in the week (weeks start on Monday 00:00 UTC). So a week's
figures weigh every lead scored in it alike, however often the keeper re-scored it; a lead whose score stood
unchanged for weeks counts in the week the promise was made.

A promise is *resolved* once its horizon has passed (``cutoff + H <= now``) or the lead has closed (won or lost)
by ``now``; its outcome is 1 when the lead was won within ``(cutoff, cutoff + H]``, else 0 (the point-in-time
label of training). The others are *waiting*. A week whose promises are all resolved is *final*; until then
its figures lean towards the leads that closed early, and say so (``waiting``).

Per model version and week: promises, resolved, waiting, conversions, mean predicted and realised rate, ROC AUC,
log loss and ECE of the resolved promises; and the reliability tables: realised conversion by score band
(:data:`BANDS`) and by grade, each with a 95 % Wilson interval.

Examples
--------
>>> history = pd.DataFrame({"lead_id": ["a", "a", "b"], "id": [1, 2, 3], "model_version": ["1", "1", "1"],
...     "scored_at": pd.to_datetime(["2025-01-06 09:00", "2025-01-08 09:00", "2025-01-07 09:00"], utc=True),
...     "cutoff": pd.to_datetime(["2025-01-06 09:00", "2025-01-08 09:00", "2025-01-07 09:00"], utc=True),
...     "probability": [0.2, 0.3, 0.6], "grade": ["C", "B", "A"]})
>>> weekly_promises(history)[["lead_id", "probability"]].values.tolist()
[['a', 0.3], ['b', 0.6]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.data.records import records
from leadscore.model.metrics import evaluate

#: Score bands of the reliability table (probability edges; a band holds (lo, hi], the first also 0).
BANDS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
#: The normal quantile of the reliability table's intervals (95 %).
Z95 = 1.959964
#: The metrics logged to a version's MLflow run per week (``monitor_<name>``, step = the week's number).
LOGGED = ("promises", "resolved", "waiting", "realised_rate", "mean_predicted", "roc_auc", "log_loss", "ece")


def week_start(times: pd.Series) -> pd.Series:
    """The Monday 00:00 UTC of the week each time falls in."""
    t = pd.to_datetime(times, utc=True)
    return (t.dt.floor("D") - pd.to_timedelta(t.dt.day_of_week, unit="D")).astype("datetime64[ns, UTC]")


def week_number(week: pd.Series) -> pd.Series:
    """A week's number: whole weeks since Monday 1970-01-05 (MLflow's step for the week)."""
    return ((pd.to_datetime(week, utc=True) - pd.Timestamp("1970-01-05", tz="UTC")) // pd.Timedelta(weeks=1)).astype(
        int
    )


def weekly_promises(history: pd.DataFrame) -> pd.DataFrame:
    """The promises to judge: per model version, lead and week of the cutoff, the last score given (the module's
    counting rule). ``history`` has ``lead_id, id, model_version, scored_at, cutoff, probability, grade``."""
    frame = history.assign(week=week_start(history["cutoff"]))
    frame = frame.sort_values(["scored_at", "id"], kind="stable")
    last = frame.drop_duplicates(["model_version", "lead_id", "week"], keep="last")
    return last.sort_values(["model_version", "week", "lead_id"], kind="stable").reset_index(drop=True)


def first_closings(events: pd.DataFrame) -> pd.DataFrame:
    """Each closed lead's first closing: ``lead_id`` (index), ``closed_at``, ``won`` (bool)."""
    closing = events[events["type"].isin(("won", "lost"))].sort_values("at", kind="stable")
    first = closing.drop_duplicates("lead_id", keep="first").set_index("lead_id")
    return pd.DataFrame({"closed_at": first["at"], "won": first["type"] == "won"})


def match_outcomes(promises: pd.DataFrame, closings: pd.DataFrame, now, horizon_days: float) -> pd.DataFrame:
    """``promises`` with ``due`` (cutoff + H), ``resolved`` (bool) and ``outcome`` (1, 0, or NaN while waiting).

    ``closings`` is :func:`first_closings` of every event known at ``now``.
    """
    now = pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    due = pd.to_datetime(promises["cutoff"], utc=True) + pd.Timedelta(days=float(horizon_days))
    ids = promises["lead_id"].astype("object")
    closed_at = pd.to_datetime(closings["closed_at"].reindex(ids), utc=True).set_axis(promises.index)
    won = closings["won"].astype(object).reindex(ids).fillna(False).astype(bool).set_axis(promises.index)
    cutoff = pd.to_datetime(promises["cutoff"], utc=True)
    closed = closed_at.notna() & (closed_at <= now)
    resolved = (due <= now) | closed
    hit = won & closed & (closed_at > cutoff) & (closed_at <= due)
    outcome = np.where(resolved, hit.astype(float), np.nan)
    return promises.assign(due=due, resolved=resolved.to_numpy(), outcome=outcome)


def band_labels(edges=BANDS) -> list[str]:
    """``0-5%``, ``5-10%``, ..."""
    pct = [f"{round(e * 100):d}" for e in edges]
    return [f"{lo}-{hi}%" for lo, hi in zip(pct[:-1], pct[1:], strict=True)]


def score_band(probability: pd.Series, edges=BANDS) -> pd.Series:
    """Each probability's band label (:data:`BANDS`)."""
    idx = np.clip(np.searchsorted(np.asarray(edges)[1:-1], probability.to_numpy(dtype=float), side="left"), 0, None)
    return pd.Series(np.asarray(band_labels(edges), dtype=object)[idx], index=probability.index)


def wilson(successes: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of a proportion (NaN where ``n`` is 0).

    Examples
    --------
    >>> lo, hi = wilson(np.array([5]), np.array([10]))
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.237, 0.763)
    """
    s, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = s / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _metrics(group: pd.DataFrame) -> pd.Series:
    done = group[group["resolved"]]
    out = {
        "promises": len(group),
        "resolved": len(done),
        "waiting": int((~group["resolved"]).sum()),
        "conversions": int(done["outcome"].sum()),
        "mean_predicted": float(done["probability"].mean()) if len(done) else np.nan,
        "realised_rate": float(done["outcome"].mean()) if len(done) else np.nan,
        "roc_auc": np.nan,
        "log_loss": np.nan,
        "ece": np.nan,
    }
    if len(done):
        m = evaluate(done["outcome"].to_numpy(dtype=int), done["probability"].to_numpy(dtype=float))
        out |= {k: m[k] for k in ("roc_auc", "log_loss", "ece")}
    return pd.Series(out)


def reliability(matched: pd.DataFrame, by: str, keys=("model_version", "week")) -> pd.DataFrame:
    """Realised conversion of the resolved promises by ``by`` ("band" or "grade") within ``keys``: promises,
    resolved, conversions, mean_predicted, realised_rate, lower, upper (95 % Wilson)."""
    frame = matched.assign(band=score_band(matched["probability"])) if by == "band" else matched
    keys = [*keys, by]
    resolved = frame["resolved"]
    grouped = frame.assign(
        done=resolved.astype(int),
        hit=np.where(resolved, frame["outcome"], 0.0),
        p_done=np.where(resolved, frame["probability"], 0.0),
    ).groupby(keys, sort=True, dropna=False)
    table = grouped.agg(
        promises=("probability", "size"), resolved=("done", "sum"), conversions=("hit", "sum"), p_sum=("p_done", "sum")
    )
    table = table.reset_index()
    n = table["resolved"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["mean_predicted"] = table.pop("p_sum") / np.where(n > 0, n, np.nan)
        table["realised_rate"] = table["conversions"] / np.where(n > 0, n, np.nan)
    table["lower"], table["upper"] = wilson(table["conversions"].to_numpy(), n)
    table["conversions"] = table["conversions"].astype(int)
    return table


@dataclass
class OutcomeReport:
    """The promises matched with outcomes as of ``now``: ``weeks`` (one row per model version and week),
    ``bands`` and ``grades`` (reliability per version and week), ``overall`` (one row per version, all weeks),
    ``overall_bands`` (reliability per version, all weeks) and ``rule`` (the counting rule, in words)."""

    now: pd.Timestamp
    horizon_days: float
    weeks: pd.DataFrame
    bands: pd.DataFrame
    grades: pd.DataFrame
    overall: pd.DataFrame
    overall_bands: pd.DataFrame
    rule: str = (
        "one promise per lead, model version and week (Monday 00:00 UTC): the lead's last score with its cutoff "
        "in that week; resolved once cutoff + horizon has passed or the lead has closed; outcome = won within "
        "(cutoff, cutoff + horizon]"
    )

    def to_dict(self) -> dict:
        return {
            "now": self.now.isoformat(),
            "horizon_days": self.horizon_days,
            "rule": self.rule,
            "weeks": records(self.weeks),
            "bands": records(self.bands),
            "grades": records(self.grades),
            "overall": records(self.overall),
            "overall_bands": records(self.overall_bands),
        }


WEEK_COLUMNS = ["model_version", "week", "final", *LOGGED[:3], "conversions", *LOGGED[3:]]


def outcome_report(history: pd.DataFrame, events: pd.DataFrame, now, horizon_days: float) -> OutcomeReport:
    """Match the stored scores ``history`` (``score_history`` rows: ``id, lead_id, scored_at, cutoff,
    probability, grade, model_version``) with the outcomes in ``events`` known at ``now``.

    Parameters
    ----------
    history : DataFrame
        The stored scores (:func:`leadscore.monitoring.promises.load_history`).
    events : DataFrame
        At least the closing events (``lead_id, at, type``); events after ``now`` are ignored.
    now : timestamp
        What is known.
    horizon_days : float
        The horizon H of the promises.
    """
    now = pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    known = events[pd.to_datetime(events["at"], utc=True) <= now]
    history = history[pd.to_datetime(history["cutoff"], utc=True) <= now]
    columns = ["model_version", "week", "probability", "grade", "resolved", "outcome"]
    if history.empty:
        empty = pd.DataFrame(columns=WEEK_COLUMNS)
        return OutcomeReport(now, float(horizon_days), empty, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                             pd.DataFrame())  # fmt: skip
    promises = weekly_promises(history.assign(model_version=history["model_version"].astype(str)))
    matched = match_outcomes(promises, first_closings(known), now, horizon_days)[columns]
    weeks = matched.groupby(["model_version", "week"], sort=True)[columns[2:]].apply(_metrics).reset_index()
    weeks["final"] = weeks["waiting"] == 0
    overall = matched.groupby("model_version", sort=True)[columns[2:]].apply(_metrics).reset_index()
    for table in (weeks, overall):
        for c in ("promises", "resolved", "waiting", "conversions"):
            table[c] = table[c].astype(int)
    return OutcomeReport(
        now=now,
        horizon_days=float(horizon_days),
        weeks=weeks[WEEK_COLUMNS],
        bands=reliability(matched, "band"),
        grades=reliability(matched.assign(grade=matched["grade"].fillna("?")), "grade"),
        overall=overall,
        overall_bands=reliability(matched, "band", keys=("model_version",)),
    )
