"""Goals: are we on target? Progress to date, the daily rate still needed, and this month against last month.

A goal (a row of the ``goals`` table) sets a ``target`` per ``period`` (day, week or month) for a ``metric`` and
a ``scope`` (the team or one salesperson), from its ``start`` on; a later goal with the same metric, period and
scope replaces it. For the ``expenses`` metric the target is a budget: less is better.

Progress is measured at a moment ``as_of`` (by default just after the data set's last event) within the period
that holds it, ``[period_start, period_end)``; "to date" means ``[period_start, as_of)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.analytics._common import Encoded, days, resolve_as_of, resolve_range, safe_ratio
from leadscore.analytics.actuals import BUDGET_METRICS, Points, check_metric, metric_points
from leadscore.analytics.periods import as_ns, check_period, floor_ns, next_ns, period_starts, utc
from leadscore.data.contracts import GOAL_METRICS, TEAM_SCOPE, CrmData
from leadscore.data.times import DAY_NS

# The three sums of a goal: this period to date, the whole previous period, the previous one to the same point.
_WINDOWS = ("actual", "last_period_actual", "last_period_same_point")


def _previous_start(period_start: int, period: str) -> int:
    """Start of the period before the one starting at ``period_start`` (int64 ns)."""
    return int(floor_ns(np.array([period_start - 1]), period)[0])


def _bounds(as_of: pd.Timestamp, period: str) -> tuple[int, int, int, int]:
    """(previous start, start, end, the same point of the previous period) around ``as_of``, in ns.

    The same point of the previous period is as far into it as ``as_of`` is into the current one, cut at the
    previous period's end (31 March compares with the whole of February).
    """
    start = int(floor_ns(np.array([as_of.value]), period)[0])
    end = int(next_ns(np.array([start]), period)[0])
    prev = _previous_start(start, period)
    return prev, start, end, min(prev + (as_of.value - start), start)


def active_goals(goals: pd.DataFrame, as_of) -> pd.DataFrame:
    """The goals in force at ``as_of``: for each (metric, period, scope), the one that started last.

    Examples
    --------
    >>> g = pd.DataFrame({"metric": ["calls", "calls"], "period": ["day", "day"], "target": [10.0, 12.0],
    ...                   "start": pd.to_datetime(["2024-01-01", "2024-02-01"], utc=True), "scope": ["team"] * 2})
    >>> active_goals(g, "2024-02-10")["target"].tolist()
    [12.0]
    """
    started = goals[as_ns(goals["start"]) <= utc(as_of, "as_of").value]
    return (
        started.sort_values("start", kind="stable")
        .drop_duplicates(["metric", "period", "scope"], keep="last")
        .sort_values(["scope", "metric", "period"], key=_scope_first)
        .reset_index(drop=True)
    )


def _scope_first(column: pd.Series) -> pd.Series:
    """Sort key putting the team before the reps, and metrics in the order of GOAL_METRICS."""
    if column.name == "scope":
        return column.map(lambda s: "" if s == TEAM_SCOPE else s)
    if column.name == "metric":
        return column.map({m: i for i, m in enumerate(GOAL_METRICS)})
    return column.map({"day": 0, "week": 1, "month": 2})


def goal_progress(
    data: CrmData,
    as_of=None,
    *,
    scope: str | None = None,
    metric: str | None = None,
    period: str | None = None,
) -> pd.DataFrame:
    """Progress towards every goal in force at ``as_of``.

    Parameters
    ----------
    data : CrmData
        The validated data set, goals included.
    as_of : timestamp-like, optional
        "Now"; by default just after the last event.
    scope, metric, period : str, optional
        Keep only the goals of this scope (``"team"`` or a rep id), metric or period.

    Returns
    -------
    DataFrame
        One row per goal: ``metric``, ``period``, ``scope``, ``target``, ``period_start``, ``period_end``,
        ``actual`` (to date), ``pct_of_target``, ``expected_to_date`` (target x elapsed share of the period),
        ``on_track``, ``status`` ("achieved", "on track", "behind"; for budgets "within budget",
        "over pace", "over budget"), ``daily_target`` (target / days in the period), ``days_left`` (calendar
        days to the period's end, counting the day of ``as_of``), ``needed_daily_rate`` (what is left of the
        target / days left; for a budget, what may still be spent per day), ``last_period_actual``,
        ``last_period_same_point`` (the previous period up to the same point) and ``change_vs_same_point``
        (actual / last_period_same_point - 1).

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]}),
    ...     pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"], "type": ["call"]}),
    ...     goals=pd.DataFrame({"metric": ["calls"], "period": ["week"], "target": [7.0],
    ...                         "start": ["2024-01-01"]}))
    >>> progress = goal_progress(data, as_of="2024-01-03")
    >>> progress[["actual", "expected_to_date", "status", "needed_daily_rate"]].to_dict("records")
    [{'actual': 1.0, 'expected_to_date': 2.0, 'status': 'behind', 'needed_daily_rate': 1.2}]
    """
    as_of_ts = resolve_as_of(data, as_of)
    encoded: list[Encoded] = []  # made once, on the first goal that needs it

    def sums(requests: dict[str, list[tuple[int, int]]]) -> dict[str, list[tuple[pd.Series, float]]]:
        if not encoded:
            encoded.append(Encoded(data))
        out = {}
        for m, windows in requests.items():
            points = metric_points(data, m, encoded=encoded[0])
            out[m] = [
                (pd.Series(points.per_rep(lo, hi), index=points.reps), points.total(lo, hi)) for lo, hi in windows
            ]
        return out

    return progress(data.goals, as_of_ts, sums, scope=scope, metric=metric, period=period)


def progress(goals: pd.DataFrame, as_of: pd.Timestamp, sums, *, scope=None, metric=None, period=None) -> pd.DataFrame:
    """:func:`goal_progress` of the ``goals`` in force at ``as_of``, given how to sum the metrics.

    ``sums({metric: windows, ...})`` returns, for each metric and each of its ``(lo, hi)`` windows (int64 ns,
    half-open), the metric summed per rep (a Series indexed by rep id; a rep not in it counts 0) and for the
    team. It is asked once, for every metric at once (so the store can answer the event metrics with one query).
    The pandas path sums the data set's points; the store's (:mod:`leadscore.store_analytics`) asks the database.
    """
    goals = active_goals(goals, as_of)
    for value, name, check in ((metric, "metric", check_metric), (period, "period", check_period)):
        if value is not None:
            check(value)
            goals = goals[goals[name] == value]
    if scope is not None:
        goals = goals[goals["scope"] == scope]
    if goals.empty:
        columns = ["metric", "period", "scope", "target", "_lo", "_hi", *_WINDOWS]
        return _progress_figures(pd.DataFrame({c: [] for c in columns}), as_of)
    # Rows grouped by metric, then period, each in the order it first appears (goals in order within).
    pair = goals["metric"] + "\x00" + goals["period"]
    order = np.lexsort((pd.factorize(pair)[0], pd.factorize(goals["metric"])[0]))
    goals = goals.iloc[order].reset_index(drop=True)
    pairs = goals[["metric", "period"]].drop_duplicates()
    bounds = {p: _bounds(as_of, p) for p in pairs["period"].unique()}
    requests: dict[str, list[tuple[int, int]]] = {}
    first_window = {}  # (metric, period) -> the index of its first window among its metric's
    for m, p in pairs.itertuples(index=False):
        prev, lo, _, same = bounds[p]
        windows = requests.setdefault(m, [])
        first_window[m, p] = len(windows)
        windows += [(lo, as_of.value), (prev, lo), (prev, same)]
    answers = sums(requests)
    # Every window's sums as one long table: (metric, window, rep) -> value, and (metric, window) -> team total.
    keys = [(m, i) for m, windows in requests.items() for i in range(len(windows))]
    totals = pd.Series([answers[m][i][1] for m, i in keys], index=pd.MultiIndex.from_tuples(keys), dtype="float64")
    per_rep = pd.concat([answers[m][i][0].astype("float64") for m, i in keys], keys=keys)
    per_rep = per_rep[~per_rep.index.duplicated()]
    start = np.array([first_window[m, p] for m, p in zip(goals["metric"], goals["period"], strict=True)])
    frame = goals[["metric", "period", "scope", "target"]].copy()
    frame["_lo"] = [bounds[p][1] for p in goals["period"]]
    frame["_hi"] = [bounds[p][2] for p in goals["period"]]
    team = (goals["scope"] == TEAM_SCOPE).to_numpy()
    for k, name in enumerate(_WINDOWS):
        window = list(zip(goals["metric"], start + k, strict=True))
        team_sum = totals.reindex(pd.MultiIndex.from_tuples(window)).to_numpy()
        rep_keys = pd.MultiIndex.from_tuples([(m, i, r) for (m, i), r in zip(window, goals["scope"], strict=True)])
        rep_sum = per_rep.reindex(rep_keys, fill_value=0.0).to_numpy() if len(per_rep) else np.zeros(len(goals))
        frame[name] = np.where(team, team_sum, rep_sum)
    return _progress_figures(frame, as_of)


def _progress_figures(f: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    lo = f["_lo"].to_numpy(dtype=np.int64)
    hi = f["_hi"].to_numpy(dtype=np.int64)
    length_days = days(hi - lo)
    elapsed = np.clip((as_of.value - lo) / np.maximum(hi - lo, 1), 0.0, 1.0)
    target = f["target"].to_numpy(dtype="float64")
    actual = f["actual"].to_numpy(dtype="float64")
    expected = target * elapsed
    budget = f["metric"].isin(BUDGET_METRICS).to_numpy()
    today = int(floor_ns(np.array([as_of.value]), "day")[0])
    days_left = days(np.maximum(hi - today, 0))
    status = np.where(
        budget,
        np.select([actual > target, actual > expected], ["over budget", "over pace"], "within budget"),
        np.select([actual >= target, actual >= expected], ["achieved", "on track"], "behind"),
    )
    out = pd.DataFrame(
        {
            "metric": f["metric"],
            "period": f["period"],
            "scope": f["scope"],
            "target": target,
            "period_start": pd.DatetimeIndex(lo.view("datetime64[ns]")).tz_localize("UTC"),
            "period_end": pd.DatetimeIndex(hi.view("datetime64[ns]")).tz_localize("UTC"),
            "actual": actual,
            "pct_of_target": 100 * safe_ratio(actual, target),
            "expected_to_date": expected,
            "on_track": np.where(budget, actual <= expected, actual >= expected),
            "status": status,
            "daily_target": safe_ratio(target, length_days),
            "days_left": days_left,
            "needed_daily_rate": safe_ratio(np.maximum(target - actual, 0.0), days_left),
            "last_period_actual": f["last_period_actual"].to_numpy(dtype="float64"),
            "last_period_same_point": f["last_period_same_point"].to_numpy(dtype="float64"),
        }
    )
    out["change_vs_same_point"] = safe_ratio(out["actual"], out["last_period_same_point"]) - 1
    return out


def goal_burnup(
    data: CrmData, metric: str, as_of=None, *, period: str = "month", scope: str = TEAM_SCOPE, target=None
) -> pd.DataFrame:
    """Day by day through the period holding ``as_of``: the cumulative actual against the target's straight line.

    The target is the goal in force for (metric, period, scope) unless given; days from ``as_of`` on have no
    actual (NaN).

    Returns
    -------
    DataFrame
        ``day``, ``actual``, ``cumulative`` and ``target_cumulative`` (the target pro rata at the day's end).

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]}),
    ...     pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"], "type": ["call"]}))
    >>> b = goal_burnup(data, "calls", "2024-01-03", period="week", target=7)
    >>> b["cumulative"].tolist()[:3], b["target_cumulative"].tolist()[:2]
    ([0.0, 1.0, nan], [1.0, 2.0])
    """
    check_metric(metric)
    check_period(period)
    as_of_ts = resolve_as_of(data, as_of)
    points = metric_points(data, metric).for_scope(scope)
    return burnup_table(points, data.goals, metric, as_of_ts, period, scope, target)


def burnup_table(
    points: Points, goals: pd.DataFrame, metric: str, as_of_ts: pd.Timestamp, period: str, scope: str, target=None
) -> pd.DataFrame:
    """:func:`goal_burnup` from the points of the scope (only those of the period holding ``as_of_ts`` count):
    shared with the store's answer, which reads just those points."""
    _, lo, hi, _ = _bounds(as_of_ts, period)
    if target is None:
        goals = active_goals(goals, as_of_ts)
        match = goals[(goals["metric"] == metric) & (goals["period"] == period) & (goals["scope"] == scope)]
        target = float(match["target"].iloc[0]) if len(match) else np.nan
    edges = np.arange(lo, hi + 1, DAY_NS, dtype=np.int64)
    per_day = points.binned(edges)
    future = edges[:-1] >= as_of_ts.value
    per_day[future] = np.nan
    n_days = len(edges) - 1
    return pd.DataFrame(
        {
            "day": pd.DatetimeIndex(edges[:-1].view("datetime64[ns]")).tz_localize("UTC"),
            "actual": per_day,
            "cumulative": np.where(future, np.nan, np.nancumsum(per_day)),
            "target_cumulative": float(target) * np.arange(1, n_days + 1) / n_days,
        }
    )


def month_over_month(
    data: CrmData, as_of=None, *, scope: str = TEAM_SCOPE, metrics: tuple[str, ...] = GOAL_METRICS
) -> pd.DataFrame:
    """This month to date against last month: to the same point, and in total, for each metric.

    Returns
    -------
    DataFrame
        One row per metric: ``this_month_to_date``, ``last_month_same_point``, ``last_month_total`` and
        ``change_vs_same_point`` (this / last same point - 1).

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b", "c"],
    ...                   "created_at": ["2024-01-05", "2024-01-20", "2024-02-03"]}),
    ...     pd.DataFrame({"event_id": [], "lead_id": [], "at": [], "type": []}))
    >>> month_over_month(data, "2024-02-10", metrics=("new_leads",)).iloc[0, 1:].tolist()
    [1.0, 1.0, 2.0, 0.0]
    """
    as_of_ts = resolve_as_of(data, as_of)
    prev, lo, _, same = _bounds(as_of_ts, "month")
    rows = []
    encoded = Encoded(data)
    for m in metrics:
        points = metric_points(data, check_metric(m), encoded=encoded).for_scope(scope)
        rows.append((m, points.total(lo, as_of_ts.value), points.total(prev, same), points.total(prev, lo)))
    out = pd.DataFrame(rows, columns=["metric", "this_month_to_date", "last_month_same_point", "last_month_total"])
    out["change_vs_same_point"] = safe_ratio(out["this_month_to_date"], out["last_month_same_point"]) - 1
    return out


def month_over_month_daily(data: CrmData, metric: str, as_of=None, *, scope: str = TEAM_SCOPE) -> pd.DataFrame:
    """Cumulative totals by day of month, this month (to ``as_of``) beside last month: the chart's data.

    Returns
    -------
    DataFrame
        ``day_of_month`` (1 to 31), ``this_month`` (the total through that day; NaN for days starting at or
        after ``as_of``) and ``last_month`` (NaN past the end of a shorter month).

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-02-01"]}),
    ...     pd.DataFrame({"event_id": [], "lead_id": [], "at": [], "type": []}))
    >>> month_over_month_daily(data, "new_leads", "2024-02-02").iloc[:3].values.tolist()
    [[1.0, 1.0, 1.0], [2.0, nan, 1.0], [3.0, nan, 1.0]]
    """
    check_metric(metric)
    as_of_ts = resolve_as_of(data, as_of)
    return daily_table(metric_points(data, metric).for_scope(scope), as_of_ts)


def daily_table(points: Points, as_of_ts: pd.Timestamp) -> pd.DataFrame:
    """:func:`month_over_month_daily` from the points of the scope (only those of this month and last count):
    shared with the store's answer, which reads just those points."""
    prev, lo, hi, _ = _bounds(as_of_ts, "month")
    out = pd.DataFrame({"day_of_month": np.arange(1, 32)})
    for name, a, b, stop in (("this_month", lo, hi, as_of_ts.value), ("last_month", prev, lo, lo)):
        edges = np.arange(a, b + 1, DAY_NS, dtype=np.int64)
        cumulative = np.cumsum(points.binned(edges))
        values = np.full(31, np.nan)
        shown = edges[:-1] < stop
        values[: len(cumulative)][shown] = cumulative[shown]
        out[name] = values
    return out


def expenses_vs_budget(
    data: CrmData, start=None, end=None, *, period: str = "month", scope: str = TEAM_SCOPE
) -> pd.DataFrame:
    """Spend against budget per period, with the revenue, conversions and cost per conversion.

    The budget of a period is the target of the latest ``expenses`` goal of that period length and scope that
    started before the period ends.

    Returns
    -------
    DataFrame
        ``period_start``, ``expenses``, ``budget``, ``remaining_budget``, ``pct_of_budget``, ``conversions``,
        ``revenue`` and ``cost_per_conversion``.

    Examples
    --------
    >>> from leadscore.data.contracts import CrmData
    >>> data = CrmData.from_frames(
    ...     pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]}),
    ...     pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"], "type": ["won"],
    ...                   "amount": [900.0]}),
    ...     goals=pd.DataFrame({"metric": ["expenses"], "period": ["month"], "target": [500.0],
    ...                         "start": ["2024-01-01"]}),
    ...     expenses=pd.DataFrame({"at": ["2024-01-03"], "amount": [300.0]}))
    >>> expenses_vs_budget(data, "2024-01-01", "2024-02-01").iloc[0, 1:].tolist()
    [300.0, 500.0, 200.0, 60.0, 1.0, 900.0, 300.0]
    """
    check_period(period)
    lo, hi = resolve_range(data, start, end)
    starts = period_starts(lo, hi, period)
    edges = np.r_[as_ns(starts), hi.value]
    edges[0] = lo.value
    encoded = Encoded(data)
    sums = {
        m: metric_points(data, m, encoded=encoded).for_scope(scope).binned(edges)
        for m in ("expenses", "conversions", "revenue")
    }
    goals = data.goals
    budgets = goals[(goals["metric"] == "expenses") & (goals["period"] == period) & (goals["scope"] == scope)]
    budgets = budgets.sort_values("start", kind="stable")
    goal_starts = as_ns(budgets["start"])
    ends = next_ns(as_ns(starts), period)
    which = np.searchsorted(goal_starts, ends, side="left") - 1
    targets = np.r_[budgets["target"].to_numpy(dtype="float64"), np.nan]  # which == -1 picks the NaN
    budget = targets[which]
    return pd.DataFrame(
        {
            "period_start": starts,
            "expenses": sums["expenses"],
            "budget": budget,
            "remaining_budget": budget - sums["expenses"],
            "pct_of_budget": 100 * safe_ratio(sums["expenses"], budget),
            "conversions": sums["conversions"],
            "revenue": sums["revenue"],
            "cost_per_conversion": safe_ratio(sums["expenses"], sums["conversions"]),
        }
    )
