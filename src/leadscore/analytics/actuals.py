"""What was actually achieved: each goal metric as timestamped amounts, attributed to a salesperson.

A goal metric is a stream of points (a time, an amount, who it counts for):

========== ==================================================== ===========================================
metric     points                                               counts for
========== ==================================================== ===========================================
revenue    each lead's first closing event, if ``won``: amount  the event's rep, else the lead's owner
conversions the same events, 1 each                             the same
expenses   each expense: amount                                 its ``rep_id``
new_leads  each lead's creation: 1                              the lead's owner
meetings   each ``meeting_held`` event: 1                       the event's rep, else the lead's owner
calls      each ``call`` event: 1                               the same
emails     each ``email_sent`` event: 1                         the same
========== ==================================================== ===========================================

Summing points over half-open ranges ``[start, end)`` gives every figure of :mod:`leadscore.analytics.goals`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.analytics._common import Encoded, outcomes, resolve_as_of, resolve_range, take
from leadscore.analytics.periods import as_ns, bin_index, check_period, period_starts
from leadscore.data.contracts import GOAL_METRICS, TEAM_SCOPE, CrmData

EVENT_METRICS = {"meetings": "meeting_held", "calls": "call", "emails": "email_sent"}
# Metrics where less is better: a budget, not a target.
BUDGET_METRICS: frozenset[str] = frozenset({"expenses"})


def check_metric(metric: str) -> str:
    """Return ``metric`` if it is a goal metric, else raise a ValueError listing them."""
    if metric not in GOAL_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(GOAL_METRICS)}")
    return metric


@dataclass(frozen=True, kw_only=True)
class Points:
    """One metric as timestamps (int64 ns), amounts, and who each counts for.

    ``rep`` holds codes into ``reps`` (a sorted index of rep ids); -1 means no one.
    """

    at: np.ndarray
    amount: np.ndarray
    rep: np.ndarray
    reps: pd.Index

    def for_scope(self, scope: str) -> Points:
        """The points that count for ``scope`` (``"team"`` keeps them all)."""
        if scope == TEAM_SCOPE:
            return self
        code = self.reps.get_indexer([scope])[0]
        keep = self.rep == code if code >= 0 else np.zeros(len(self.rep), dtype=bool)
        return Points(at=self.at[keep], amount=self.amount[keep], rep=self.rep[keep], reps=self.reps)

    def total(self, lo: int, hi: int) -> float:
        """Sum of the amounts at ``lo <= at < hi`` (nanoseconds)."""
        return float(self.amount[(self.at >= lo) & (self.at < hi)].sum())

    def per_rep(self, lo: int, hi: int) -> np.ndarray:
        """Sum of the amounts in ``[lo, hi)`` for each rep of ``reps``."""
        inside = (self.at >= lo) & (self.at < hi) & (self.rep >= 0)
        return np.bincount(self.rep[inside], weights=self.amount[inside], minlength=len(self.reps)).astype("float64")

    def binned(self, edges: np.ndarray) -> np.ndarray:
        """Sum of the amounts in each half-open bin ``[edges[k], edges[k+1])``."""
        idx = bin_index(self.at, edges)
        inside = idx >= 0
        return np.bincount(idx[inside], weights=self.amount[inside], minlength=len(edges) - 1).astype("float64")


def metric_points(data: CrmData, metric: str, *, as_of=None, encoded: Encoded | None = None) -> Points:
    """The points of one goal metric (see the module table).

    Pass ``encoded`` (an :class:`~leadscore.analytics._common.Encoded` of ``data``) to share the encoding
    between several metrics.

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"], "owner_id": ["ann"]}),
    ...     pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-05"], "type": ["won"],
    ...                   "amount": [500.0]}))
    >>> p = metric_points(data, "revenue")
    >>> p.amount.tolist(), [p.reps[c] for c in p.rep]
    ([500.0], ['ann'])
    """
    check_metric(metric)
    enc = encoded or Encoded(data)
    if metric in ("revenue", "conversions"):
        out = outcomes(data, resolve_as_of(data, as_of))
        out = out[(out["outcome"] == "won").to_numpy()]
        amount = np.nan_to_num(out["amount"].to_numpy(dtype="float64")) if metric == "revenue" else np.ones(len(out))
        return Points(at=as_ns(out["closed_at"]), amount=amount, rep=enc.attribute_closings(out), reps=enc.reps)
    if metric == "expenses":
        ex = data.expenses
        codes, names = pd.factorize(ex["rep_id"])  # an expense without a rep is the team's only
        reps = enc.reps.union(pd.Index(names, dtype=object)) if len(names) else enc.reps
        rep = take(reps.get_indexer(names), codes)
        return Points(at=as_ns(ex["at"]), amount=ex["amount"].to_numpy(dtype="float64"), rep=rep, reps=reps)
    if metric == "new_leads":
        leads = data.leads
        return Points(at=as_ns(leads["created_at"]), amount=np.ones(len(leads)), rep=enc.owner, reps=enc.reps)
    mask = enc.is_type(EVENT_METRICS[metric])
    return Points(at=enc.at[mask], amount=np.ones(int(mask.sum())), rep=enc.rep[mask], reps=enc.reps)


def actuals(
    data: CrmData,
    metric: str,
    start=None,
    end=None,
    *,
    period: str = "day",
    scope: str = TEAM_SCOPE,
) -> pd.DataFrame:
    """A goal metric per period over ``[start, end)``, with its running total.

    Parameters
    ----------
    data : CrmData
        The validated data set.
    metric : str
        One of :data:`leadscore.data.contracts.GOAL_METRICS`.
    start, end : timestamp-like, optional
        The half-open range; by default the whole data set. Periods are cut to it.
    period : {"day", "week", "month"}
        The length of each row.
    scope : str
        ``"team"`` or a salesperson's id.

    Returns
    -------
    DataFrame
        ``period_start``, ``actual`` and ``cumulative`` (the total from ``start`` through the period).

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-31 23:59", "2024-02-01 00:00"]}),
    ...     pd.DataFrame({"event_id": [], "lead_id": [], "at": [], "type": []}))
    >>> actuals(data, "new_leads", "2024-01-01", "2024-03-01", period="month")["actual"].tolist()
    [1.0, 1.0]
    """
    check_period(period)
    lo, hi = resolve_range(data, start, end)
    points = metric_points(data, metric).for_scope(scope)
    starts = period_starts(lo, hi, period)
    edges = np.r_[as_ns(starts), hi.value]
    edges[0] = lo.value
    values = points.binned(edges)
    return pd.DataFrame({"period_start": starts, "actual": values, "cumulative": np.cumsum(values)})
