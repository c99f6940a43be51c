"""Salesperson performance over a period: activity, meetings, outcomes and responsiveness, per rep and team.

Attribution: an event counts for its ``rep_id``, or for the lead's owner when the event names no one. Leads
(new leads, open leads, first responses) count for their owner. A deal counts once, at the lead's first
``won``/``lost`` event, when that falls in the window.

Definitions, so each figure can be checked by hand:

- ``open_rate`` = emails opened / emails sent, ``reply_rate`` = emails replied / emails sent (events in the
  window, so a reply to last month's email counts this month).
- ``avg_call_duration_s``: mean ``duration_s`` of the window's calls that have one.
- ``show_rate`` = meetings held / (held + cancelled + rejected): of the meetings that were settled in the
  window, the share that took place.
- ``win_rate`` = won / (won + lost); ``avg_deal_size`` = revenue / won.
- ``median_first_response_h``: for leads created in the window, hours from creation to the first outbound touch
  (email sent, call, meeting scheduled or held) by anyone, up to ``as_of``; ``unanswered_leads`` had none.
- ``activity_per_open_lead`` = outbound touches in the window / leads owned that were open at some moment of
  the window (created before its end, not closed before its start).

The team row counts every event in the window, including those attributed to no one, so it can exceed the sum
of the reps; the ``team_median`` row is the median over reps of each figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.analytics._common import (
    OUTBOUND_TYPES,
    Encoded,
    days,
    outcomes,
    resolve_as_of,
    resolve_range,
    safe_ratio,
)
from leadscore.analytics.periods import MAX_PERIODS as MAX_PERIODS  # the limit its docstring names
from leadscore.analytics.periods import as_ns, check_period, check_period_count, period_starts
from leadscore.data.contracts import COLD_CALL_SUBTYPE, KNOWN_EVENT_TYPES, TEAM_SCOPE, CrmData

TEAM_MEDIAN = "team_median"
# The event types a salesperson's figures count (their codes index the counting arrays, in the contract's order).
_TYPES = tuple(t for t in KNOWN_EVENT_TYPES if t.startswith(("email_", "meeting_")) or t == "call")
_T = {t: i for i, t in enumerate(_TYPES)}
#: The event types whose counts :func:`event_tallies` returns.
TALLY_TYPES: tuple[str, ...] = _TYPES
_IS_OUTBOUND = np.zeros(len(_TYPES) + 1, dtype=bool)  # indexed by type code; code -1 (other) hits the last
_IS_OUTBOUND[[_T[t] for t in OUTBOUND_TYPES]] = True

METRICS: tuple[str, ...] = (
    "emails_sent",
    "emails_opened",
    "emails_replied",
    "open_rate",
    "reply_rate",
    "calls",
    "cold_calls",
    "avg_call_duration_s",
    "meetings_scheduled",
    "meetings_held",
    "meetings_rejected",
    "meetings_cancelled",
    "show_rate",
    "won",
    "lost",
    "win_rate",
    "revenue",
    "avg_deal_size",
    "new_leads",
    "median_first_response_h",
    "unanswered_leads",
    "open_leads",
    "activities",
    "activity_per_open_lead",
)
# Figures where less is better: a manager reads "above the median" on these as a warning.
# Meetings rejected or cancelled are lost chances, like lost deals: fewer than the team is not a weakness.
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"median_first_response_h", "unanswered_leads", "lost", "meetings_rejected", "meetings_cancelled"}
)


class _Prepared:
    """The events and leads encoded once as integer arrays: types, reps, lead positions, times."""

    def __init__(self, data: CrmData, as_of: pd.Timestamp):
        leads = data.leads
        enc = Encoded(data)
        self.at, self.rep, self.reps, self.owner = enc.at, enc.rep, enc.reps, enc.owner
        self.type = enc.type_code(_TYPES)
        self.outbound = _IS_OUTBOUND[self.type]
        self.created = as_ns(leads["created_at"])
        self.duration = data.events["duration_s"].to_numpy(dtype="float64")
        cold = (data.events["subtype"] == COLD_CALL_SUBTYPE).to_numpy(dtype=bool, na_value=False)
        self.cold = cold & (self.type == _T["call"])

        out = outcomes(data, as_of)
        pos = enc.lead_positions(out["lead_id"])
        self.closed = np.full(len(leads), np.iinfo(np.int64).max)
        self.closed[pos] = as_ns(out["closed_at"])
        self.won = np.zeros(len(leads), dtype=bool)
        self.won[pos] = (out["outcome"] == "won").to_numpy()
        self.amount = np.zeros(len(leads))
        self.amount[pos] = np.nan_to_num(out["amount"].to_numpy(dtype="float64"))
        self.closing_rep = self.owner.copy()
        self.closing_rep[pos] = enc.attribute_closings(out)

        # First outbound touch of each lead, up to as_of. Looking up the lead of each touch is the costliest
        # step of the whole function (hashing millions of ids), so only touches are looked up.
        touch = np.flatnonzero(self.outbound & (self.at < as_of.value))
        lead = enc.lead_positions(data.events["lead_id"].iloc[touch])
        known = lead >= 0
        self.first_touch = np.full(len(leads), np.iinfo(np.int64).max)
        np.minimum.at(self.first_touch, lead[known], self.at[touch[known]])


def event_tallies(p: _Prepared, lo: int, hi: int) -> dict[str, np.ndarray]:
    """The event figures of ``[lo, hi)`` (nanoseconds) per rep slot of ``p.reps`` (the last slot: no one).

    Keys: each of :data:`TALLY_TYPES` (events of that type), ``cold_calls``, ``call_seconds`` (summed
    ``duration_s`` of calls that have one), ``timed_calls`` and ``activities`` (outbound events).
    """
    n_reps, n_types = len(p.reps), len(_TYPES)
    size = n_reps + 1  # the last slot collects events attributed to no one
    w = (p.at >= lo) & (p.at < hi) & (p.type >= 0)
    rep = np.where(p.rep[w] >= 0, p.rep[w], n_reps)
    counts = np.bincount(rep * n_types + p.type[w], minlength=size * n_types).reshape(size, n_types)
    is_call = p.type[w] == _T["call"]
    dur = p.duration[w]
    timed = is_call & ~np.isnan(dur)
    return {
        **{t: counts[:, i] for i, t in enumerate(_TYPES)},
        "cold_calls": np.bincount(rep[p.cold[w]], minlength=size),
        "call_seconds": np.bincount(rep[timed], weights=dur[timed], minlength=size),
        "timed_calls": np.bincount(rep[timed], minlength=size),
        "activities": np.bincount(rep[p.outbound[w]], minlength=size),
    }


def _window(p: _Prepared, lo: int, hi: int) -> pd.DataFrame:
    """Per-rep figures for ``[lo, hi)`` (nanoseconds), with the team and team-median rows."""
    return window_figures(p, lo, hi, event_tallies(p, lo, hi))


def window_figures(p, lo: int, hi: int, tallies: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-rep figures for ``[lo, hi)`` from the window's event ``tallies`` and the leads' facts in ``p``.

    ``p`` holds, per lead, ``owner`` (codes into ``p.reps``, -1: no one), ``created``, ``first_touch``,
    ``closed`` (int64 ns; int64 max when none), ``won``, ``amount`` and ``closing_rep``. Both the pandas path
    and the store's (:mod:`leadscore.store_analytics`) compute their figures here.
    """
    n_reps = len(p.reps)
    size = n_reps + 1  # the last slot collects what counts for no one
    counts = tallies

    closing_rep = np.where(p.closing_rep >= 0, p.closing_rep, n_reps)
    closed_here = (p.closed >= lo) & (p.closed < hi)
    won = np.bincount(closing_rep[closed_here & p.won], minlength=size)
    lost = np.bincount(closing_rep[closed_here & ~p.won], minlength=size)
    revenue = np.bincount(closing_rep[closed_here & p.won], weights=p.amount[closed_here & p.won], minlength=size)

    owner = np.where(p.owner >= 0, p.owner, n_reps)
    new = (p.created >= lo) & (p.created < hi)
    new_leads = np.bincount(owner[new], minlength=size)
    answered = new & (p.first_touch != np.iinfo(np.int64).max)
    unanswered = np.bincount(owner[new & ~answered], minlength=size)
    response_h = days(p.first_touch[answered] - p.created[answered]) * 24
    median_response = np.full(size, np.nan)
    if answered.any():
        by = pd.Series(response_h).groupby(owner[answered]).median()
        median_response[by.index.to_numpy()] = by.to_numpy()
    open_in_window = (p.created < hi) & (p.closed >= lo)
    open_leads = np.bincount(owner[open_in_window], minlength=size)

    per_slot = {
        "emails_sent": counts["email_sent"],
        "emails_opened": counts["email_opened"],
        "emails_replied": counts["email_replied"],
        "calls": counts["call"],
        "cold_calls": counts["cold_calls"],
        "_call_time": counts["call_seconds"],
        "_timed_calls": counts["timed_calls"],
        "meetings_scheduled": counts["meeting_scheduled"],
        "meetings_held": counts["meeting_held"],
        "meetings_rejected": counts["meeting_rejected"],
        "meetings_cancelled": counts["meeting_cancelled"],
        "won": won,
        "lost": lost,
        "revenue": revenue,
        "new_leads": new_leads,
        "unanswered_leads": unanswered,
        "open_leads": open_leads,
        "activities": counts["activities"],
    }
    reps = pd.DataFrame({k: v[:n_reps] for k, v in per_slot.items()})
    reps["median_first_response_h"] = median_response[:n_reps]
    team = pd.DataFrame({k: [v.sum()] for k, v in per_slot.items()})
    team["median_first_response_h"] = np.median(response_h) if len(response_h) else np.nan
    frame = pd.concat([reps, team], ignore_index=True)
    frame.insert(0, "rep_id", [*p.reps, TEAM_SCOPE])
    frame = _rates(frame)
    active = frame[[c for c in per_slot if not c.startswith("_")]].sum(axis=1) > 0
    active.iloc[-1] = True
    frame = frame[active].reset_index(drop=True)
    median = frame.iloc[:-1][list(METRICS)].median(numeric_only=True)
    median_row = pd.DataFrame([{"rep_id": TEAM_MEDIAN, **median.to_dict()}])
    return pd.concat([frame, median_row], ignore_index=True)


def _rates(frame: pd.DataFrame) -> pd.DataFrame:
    f = frame
    settled = f["meetings_held"] + f["meetings_cancelled"] + f["meetings_rejected"]
    rates = {
        "open_rate": safe_ratio(f["emails_opened"], f["emails_sent"]),
        "reply_rate": safe_ratio(f["emails_replied"], f["emails_sent"]),
        "avg_call_duration_s": safe_ratio(f["_call_time"], f["_timed_calls"]),
        "show_rate": safe_ratio(f["meetings_held"], settled),
        "win_rate": safe_ratio(f["won"], f["won"] + f["lost"]),
        "avg_deal_size": safe_ratio(f["revenue"], f["won"]),
        "activity_per_open_lead": safe_ratio(f["activities"], f["open_leads"]),
    }
    f = f.assign(**rates)
    return f[["rep_id", *METRICS]]


def rep_performance(data: CrmData, start=None, end=None, *, period: str | None = None, as_of=None) -> pd.DataFrame:
    """Each salesperson's figures over ``[start, end)``, with a ``team`` row and a ``team_median`` row.

    Parameters
    ----------
    data : CrmData
        The validated data set.
    start, end : timestamp-like, optional
        The half-open window; by default the whole data set.
    period : {None, "day", "week", "month"}
        Split the window into periods (a ``period_start`` column is added); None gives one row per rep. At
        most :data:`MAX_PERIODS` periods (a ValueError otherwise).
    as_of : timestamp-like, optional
        How far to look for first responses and deal outcomes; by default the end of the data.

    Returns
    -------
    DataFrame
        ``rep_id`` then the columns of :data:`METRICS` (see the module notes for each definition). Reps with
        nothing in the window are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"], "owner_id": ["ann"]}),
    ...     pd.DataFrame({"event_id": ["1", "2"], "lead_id": ["a", "a"], "at": ["2024-01-01 02:00", "2024-01-02"],
    ...                   "type": ["email_sent", "email_opened"]}))
    >>> perf = rep_performance(data).set_index("rep_id")
    >>> perf.loc["ann", ["emails_sent", "open_rate", "median_first_response_h"]].tolist()
    [1.0, 1.0, 2.0]
    """
    lo, hi = resolve_range(data, start, end)
    if period is not None:
        check_period(period)
        check_period_count(lo, hi, period)  # before any work: each period is computed on its own
    prepared = _Prepared(data, resolve_as_of(data, as_of))
    return performance_table([(s, _window(prepared, a, b)) for s, a, b in performance_windows(lo, hi, period)])


def performance_windows(lo: pd.Timestamp, hi: pd.Timestamp, period: str | None) -> list[tuple]:
    """The windows :func:`rep_performance` reports on: ``(period_start, lo_ns, hi_ns)`` each.

    One window ``(None, lo, hi)`` without a period; else one per period overlapping ``[lo, hi)``, cut to it
    (at most :data:`MAX_PERIODS`, a ValueError naming the period otherwise).
    """
    if period is None:
        return [(None, lo.value, hi.value)]
    check_period(period)
    check_period_count(lo, hi, period)
    starts = period_starts(lo, hi, period)
    ends = [*starts[1:], hi]
    return [(s, max(s, lo).value, min(e, hi).value) for s, e in zip(starts, ends, strict=True)]


def performance_table(windows: list[tuple]) -> pd.DataFrame:
    """The figures of each window (``(period_start, frame)`` pairs) as one table, ``period_start`` first when
    the windows are periods."""
    if len(windows) == 1 and windows[0][0] is None:
        return windows[0][1]
    frames = [frame.assign(period_start=s)[["period_start", *frame.columns]] for s, frame in windows]
    return pd.concat(frames, ignore_index=True)


def vs_team_median(performance: pd.DataFrame) -> pd.DataFrame:
    """Each rep's figures against the team median: the long form a manager reads to see who needs help where.

    Parameters
    ----------
    performance : DataFrame
        The output of :func:`rep_performance`.

    Returns
    -------
    DataFrame
        One row per (period_start,) rep and metric: ``value``, ``team_median``, ``ratio`` (value / median, NaN
        when the median is 0 or missing) and ``flag``: ``"needs attention"`` when the figure is more than 20 % worse
        than the median (below it, or above it for :data:`LOWER_IS_BETTER`), ``"ahead"`` when more than 20 %
        better, else ``"near median"``.

    Examples
    --------
    >>> perf = pd.DataFrame({"rep_id": ["ann", "bob", "team", "team_median"], "calls": [10, 4, 14, 7]})
    >>> vs_team_median(perf)[["rep_id", "ratio", "flag"]].values.tolist()
    [['ann', 1.4285714285714286, 'ahead'], ['bob', 0.5714285714285714, 'needs attention']]
    """
    keys = ["period_start"] if "period_start" in performance.columns else []
    metrics = [m for m in performance.columns if m not in (*keys, "rep_id")]
    long = performance.melt(id_vars=[*keys, "rep_id"], value_vars=metrics, var_name="metric", value_name="value")
    medians = long[long["rep_id"] == TEAM_MEDIAN].drop(columns="rep_id").rename(columns={"value": "team_median"})
    reps = long[~long["rep_id"].isin((TEAM_SCOPE, TEAM_MEDIAN))]
    out = reps.merge(medians, on=[*keys, "metric"], how="left")
    out["ratio"] = safe_ratio(out["value"], out["team_median"])
    worse = np.where(out["metric"].isin(LOWER_IS_BETTER), out["ratio"] > 1.2, out["ratio"] < 0.8)
    better = np.where(out["metric"].isin(LOWER_IS_BETTER), out["ratio"] < 0.8, out["ratio"] > 1.2)
    out["flag"] = np.select([worse, better], ["needs attention", "ahead"], "near median")
    return out[[*keys, "rep_id", "metric", "value", "team_median", "ratio", "flag"]].reset_index(drop=True)
