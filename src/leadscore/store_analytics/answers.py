"""The funnel, salesperson performance and goal progress of the stored data, answered by the database.

Each function takes a :class:`~leadscore.store.Repository` and the parameters of its pandas twin in
:mod:`leadscore.analytics`, and returns the same table. The database does the counting (the read model of
events per day, indexes on leads and closings) and sends back only what the question needs: per-window and
per-rep sums, one row per lead created in the asked range, and the cohort's stage changes. The figures are
then finished by the very code the pandas path uses (rates, medians, the team rows), so the two cannot drift.

Where a figure is a median or a percentile (time in stage, cycle time, first response), the database sends the
per-lead values it is taken over, not the events behind them: a quantile is not an aggregate SQLite has, and
taking it in numpy keeps it bit for bit the pandas one.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from leadscore.analytics._common import check_group_by, days
from leadscore.analytics.actuals import EVENT_METRICS, Points, check_metric
from leadscore.analytics.forecast import _check_pipeline
from leadscore.analytics.forecast import forecast as pandas_forecast
from leadscore.analytics.funnel import FUNNEL_STAGES, _Cohort, funnel_summary_table, funnel_table
from leadscore.analytics.funnel import lost_reasons as pandas_lost_reasons
from leadscore.analytics.goals import _bounds, burnup_table, daily_table, progress
from leadscore.analytics.performance import TALLY_TYPES, performance_table, performance_windows, window_figures
from leadscore.analytics.periods import check_period, check_period_count, check_range, utc
from leadscore.data.contracts import EVENTS, LEADS, OUTBOUND_EVENT_TYPES, TEAM_SCOPE, CrmData
from leadscore.data.times import DAY_NS
from leadscore.store import Repository
from leadscore.store.bulk import Bulk
from leadscore.store_analytics import queries as q

_NEVER = np.iinfo(np.int64).max
_GROUPS_BY_COLUMN = {"owner": "owner_id", "source": "source"}


# ------------------------------------------------------------------------------------------------- defaults


def _range(conn: Connection, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` with the pandas path's defaults, from the store's first and last moments."""
    if start is None or end is None:
        span = q.extent(conn)
        if span is None:
            raise ValueError("the data set is empty: give start and end explicitly")
        if start is None:
            start = pd.Timestamp(span[0], unit="ns", tz="UTC").floor("D")
        if end is None:
            end = pd.Timestamp(span[1], unit="ns", tz="UTC").floor("D") + pd.Timedelta(days=1)
    return check_range(start, end)


def _as_of(conn: Connection, as_of) -> pd.Timestamp:
    """The moment figures are computed at: by default just after the store's last event or lead."""
    if as_of is not None:
        return utc(as_of, "as_of")
    span = q.extent(conn)
    if span is None:
        raise ValueError("the data set is empty: give as_of explicitly")
    return pd.Timestamp(span[1] + 1, unit="ns", tz="UTC")


# ------------------------------------------------------------------------------------------------- funnel


def funnel(
    repo: Repository,
    start=None,
    end=None,
    *,
    group_by: str | None = None,
    period: str = "month",
    as_of=None,
    summary: bool = False,
) -> pd.DataFrame:
    """:func:`leadscore.analytics.funnel` (or, with ``summary``, :func:`~leadscore.analytics.funnel_summary`)
    of the stored data.

    The database selects the cohort (leads created in ``[start, end)``) and its stage changes and closings from
    indexes; the stage flow is then computed by the pandas function on those rows alone, which are all it reads.

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> _ = repo.ingest(
    ...     leads=pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-01-02"]}),
    ...     events=pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-05"], "type": ["won"],
    ...                          "amount": [100.0]}))
    >>> funnel(repo, summary=True)[["leads", "won", "win_rate"]].to_dict("records")
    [{'leads': 2, 'won': 1, 'win_rate': 1.0}]
    """
    check_period(period)
    with repo.engine.connect() as conn:
        lo, hi = _range(conn, start, end)
        as_of_ts = _as_of(conn, as_of)
        attribute = _attribute(conn, group_by)
        if group_by == "period":
            check_period_count(lo, hi, period)  # before any work, as the pandas path
        span = (lo.value, hi.value, as_of_ts.value)
        leads = q.cohort_leads(conn, *span, attribute)
        points = q.cohort_funnel(conn, *span, stays=not summary)
    cohort = _cohort(leads, points, summary, lo, hi, as_of_ts, group_by, period)
    return funnel_summary_table(cohort) if summary else funnel_table(cohort)


def _cohort(leads, points, summary, lo, hi, as_of, group_by, period) -> _Cohort:
    """The funnel's cohort from the store's rows: its leads and, per lead, what the read model knows of it (its
    first closing and, unless only the summary is asked for, how far it got and its time in each stage)."""
    n = len(leads)
    pos = pd.Index(leads["lead_id"]).get_indexer(points["lead_id"])
    points = points[pos >= 0]  # (every cohort lead has rows, the stay its creation starts; never one beyond)
    pos = pos[pos >= 0]
    closing = points["closing"].to_numpy(dtype=np.int64)
    closed_lead = closing < 0
    outcome = np.full(n, None, dtype=object)
    outcome[pos[closed_lead]] = np.where(closing[closed_lead] == -1, "won", "lost")
    closed = np.full(n, _NEVER, dtype=np.int64)
    closed[pos[closed_lead]] = points["closed_us"].to_numpy(dtype=np.int64)[closed_lead] * 1000
    amount = np.full(n, np.nan)
    amount[pos[closed_lead]] = points["amount"].to_numpy(dtype="float64")[closed_lead]
    max_rank = stay_days = has_stay = None
    if not summary:
        n_ranks = len(FUNNEL_STAGES)  # ranks 0 (unknown stage) to the last stage
        max_rank = np.ones(n, dtype=np.int64)
        max_rank[pos] = points["max_rank"].to_numpy(dtype=np.int64)
        stay_us = np.full((n, n_ranks), -1, dtype=np.int64)
        for rank in q.RANKS:
            stay_us[pos, rank] = points[f"stay_us_{rank}"].to_numpy(dtype=np.int64)
        has_stay = stay_us >= 0
        stay_days = np.where(has_stay, days(stay_us * 1000), 0.0)
    frame = pd.DataFrame(
        {
            "lead_id": leads["lead_id"].astype("str"),
            "created_at": pd.to_datetime(leads["created"].to_numpy(dtype=np.int64), utc=True),
            "owner_id": leads["owner_id"].astype("str"),
            "source": leads["source"].astype("str"),
        }
    )
    if "attribute" in leads:
        parsed = [None if v is None else json.loads(v) for v in leads["attribute"]]
        frame[group_by] = _attribute_values(parsed, frame.index)
    return _Cohort.from_parts(
        frame,
        lo,
        hi,
        as_of,
        outcome=outcome,
        closed=closed,
        amount=amount,
        max_rank=max_rank,
        stay_days=stay_days,
        has_stay=has_stay,
        group_by=group_by,
        period=period,
    )


def _attribute_values(values: list, index: pd.Index) -> pd.Series:
    """An attribute's values as the full read types its column (text as ``str``, numbers as numbers)."""
    series = pd.Series(values, index=index, dtype=None)
    if pd.api.types.infer_dtype(series, skipna=True) == "string":
        series = series.astype("str")
    return series


def _attribute(conn: Connection, group_by: str | None) -> str | None:
    """The lead attribute ``group_by`` names (None for no grouping, period, owner or source); a ValueError
    listing the choices when no stored lead has it."""
    if group_by in (None, "period", *_GROUPS_BY_COLUMN):
        return None
    if not q.has_attribute(conn, group_by):
        names = q.attribute_names(conn)
        check_group_by(pd.DataFrame(columns=["lead_id", "created_at", "owner_id", "source", *names]), group_by)
    return group_by


def _cohort_data(conn: Connection, leads: pd.DataFrame, events: pd.DataFrame, attribute: str | None) -> CrmData:
    """The cohort's rows as a data set typed as the store's full read types it."""
    bulk = Bulk.for_connection(conn)
    lead_frame = pd.DataFrame(
        {
            "lead_id": leads["lead_id"].astype("str"),
            "created_at": bulk.timestamps_from(leads["created_at"]),
            "owner_id": leads["owner_id"].astype("str"),
            "source": leads["source"].astype("str"),
        }
    )
    if attribute:
        lead_frame[attribute] = _attribute_values(leads["attribute"].tolist(), lead_frame.index)
    event_frame = pd.DataFrame(index=events.index)
    for column in EVENTS.columns:
        name = column.name
        if name not in events.columns:
            kind = {"timestamp": "datetime64[ns, UTC]", "float": "float64"}.get(column.kind, "str")
            event_frame[name] = pd.Series(pd.NA if kind == "str" else None, index=events.index, dtype=kind)
        elif column.kind == "timestamp":
            event_frame[name] = bulk.timestamps_from(events[name])
        elif column.kind == "float":
            event_frame[name] = pd.to_numeric(events[name]).astype("float64")
        else:
            event_frame[name] = events[name].astype("str")
    assert set(LEADS.names) <= set(lead_frame.columns)
    return CrmData(leads=lead_frame, events=event_frame)


# ------------------------------------------------------------------------------------------------- performance


class _LeadFacts:
    """What :func:`leadscore.analytics.performance.window_figures` reads of the leads, as the store gives it."""

    def __init__(self, facts: pd.DataFrame, closings: pd.DataFrame, tallied_reps: pd.Series):
        # Leads closed in the range but created after it (possible only in odd data) still count their closing.
        late = closings[~closings["lead_id"].isin(facts["lead_id"])]
        lead_ids = pd.Index(np.r_[facts["lead_id"].to_numpy(), late["lead_id"].to_numpy()])
        owners = pd.Series(np.r_[facts["owner_id"].to_numpy(), np.full(len(late), None)], dtype=object)
        names = pd.concat([owners, closings["rep_id"], tallied_reps]).dropna().unique()
        self.reps = pd.Index(sorted(names), dtype=object)
        self.owner = self.reps.get_indexer(owners)
        n_late = len(late)
        self.created = np.r_[facts["created"].to_numpy(dtype=np.int64), np.full(n_late, _NEVER)]
        self.first_touch = np.r_[facts["first_touch"].to_numpy(dtype=np.int64), np.full(n_late, _NEVER)]
        self.closed = np.r_[facts["closed"].to_numpy(dtype=np.int64), np.full(n_late, _NEVER)]
        self.won = np.zeros(len(lead_ids), dtype=bool)
        self.amount = np.zeros(len(lead_ids))
        self.closing_rep = self.owner.copy()
        pos = lead_ids.get_indexer(closings["lead_id"])
        self.closed[pos] = closings["closed_at"].to_numpy(dtype=np.int64)
        self.won[pos] = closings["won"].to_numpy()
        self.amount[pos] = np.nan_to_num(closings["amount"].to_numpy(dtype="float64"))
        self.closing_rep[pos] = self.reps.get_indexer(closings["rep_id"])


def _slots(tallies: pd.DataFrame, reps: pd.Index) -> dict[str, np.ndarray]:
    """One window's tallies as the per-rep-slot arrays :func:`window_figures` takes (last slot: no one)."""
    size = len(reps) + 1
    code = reps.get_indexer(tallies["rep_id"])
    slot = np.where(code >= 0, code, len(reps))
    out: dict[str, np.ndarray] = {}
    for t in TALLY_TYPES:
        mine = (tallies["type"] == t).to_numpy()
        out[t] = np.bincount(slot[mine], weights=tallies["events"].to_numpy()[mine], minlength=size).astype(np.int64)
    calls = (tallies["type"] == "call").to_numpy()
    for name in ("cold_calls", "timed_calls"):
        out[name] = np.bincount(slot[calls], weights=tallies[name].to_numpy()[calls], minlength=size).astype(np.int64)
    out["call_seconds"] = np.bincount(slot[calls], weights=tallies["call_seconds"].to_numpy()[calls], minlength=size)
    out["activities"] = sum(out[t] for t in OUTBOUND_EVENT_TYPES)
    return out


def rep_performance(repo: Repository, start=None, end=None, *, period: str | None = None, as_of=None) -> pd.DataFrame:
    """:func:`leadscore.analytics.rep_performance` of the stored data.

    Event figures are sums of the read model over the window's whole days plus the events of its partial days;
    deals are the first closings in the window; new, open and unanswered leads and first-response times come
    from one row per lead created before the window's end (its creation, first touch and first closing).

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> _ = repo.ingest(
    ...     leads=pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"], "owner_id": ["ann"]}),
    ...     events=pd.DataFrame({"event_id": ["1", "2"], "lead_id": ["a", "a"],
    ...                          "at": ["2024-01-01 02:00", "2024-01-02"], "type": ["email_sent", "email_opened"]}))
    >>> perf = rep_performance(repo).set_index("rep_id")
    >>> perf.loc["ann", ["emails_sent", "open_rate", "median_first_response_h"]].tolist()
    [1.0, 1.0, 2.0]
    """
    with repo.engine.connect() as conn:
        lo, hi = _range(conn, start, end)
        as_of_ts = _as_of(conn, as_of)
        windows = performance_windows(lo, hi, period)
        spans = [(a, b) for _, a, b in windows]
        tallies = q.tallies(conn, spans)
        facts = q.lead_facts(conn, hi.value, as_of_ts.value)
        closings = q.first_closings(conn, lo.value, min(hi.value, as_of_ts.value))
    leads = _LeadFacts(facts, closings, tallies["rep_id"])
    by_window = dict(iter(tallies.groupby("window")))
    empty = tallies.iloc[:0]
    frames = [
        (s, window_figures(leads, a, b, _slots(by_window.get(i, empty), leads.reps)))
        for i, (s, a, b) in enumerate(windows)
    ]
    return performance_table(frames)


# ------------------------------------------------------------------------------------------------- goals


def goal_progress(
    repo: Repository, as_of=None, *, scope: str | None = None, metric: str | None = None, period: str | None = None
) -> pd.DataFrame:
    """:func:`leadscore.analytics.goal_progress` of the stored data and goals.

    Each metric is summed by the database over the few windows progress needs (this period to date, the last
    period, the last period to the same point): event counts from the read model, deals from the first closings
    in the windows, new leads and expenses from their indexed times.

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> _ = repo.ingest(leads=pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]}),
    ...                 events=pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"],
    ...                                      "type": ["call"]}))
    >>> _ = repo.upsert_goals(pd.DataFrame({"metric": ["calls"], "period": ["week"], "target": [7.0],
    ...                                     "start": ["2024-01-01"]}))
    >>> goal_progress(repo, as_of="2024-01-03")[["actual", "status"]].to_dict("records")
    [{'actual': 1.0, 'status': 'behind'}]
    """
    with repo.engine.connect() as conn:
        as_of_ts = _as_of(conn, as_of)
        goals = repo.load_goals(in_force_at=as_of_ts)

        def sums(requests: dict[str, list[tuple[int, int]]]) -> dict[str, list[tuple[pd.Series, float]]]:
            return _metric_sums(conn, {check_metric(m): windows for m, windows in requests.items()})

        return progress(goals, as_of_ts, sums, scope=scope, metric=metric, period=period)


def _metric_sums(
    conn: Connection, requests: dict[str, list[tuple[int, int]]]
) -> dict[str, list[tuple[pd.Series, float]]]:
    """Per metric and window: the metric summed per rep (a Series by rep id) and for the team. The event
    metrics' windows are summed by one query of the read model; revenue and conversions share one read of the
    closings."""
    out: dict[str, list[tuple[pd.Series, float]]] = {}
    counted = {m: w for m, w in requests.items() if m in EVENT_METRICS}
    if counted:
        spans = sorted({w for windows in counted.values() for w in windows})
        tallies = q.tallies(conn, spans)
        team = tallies.groupby(["type", "window"])["events"].sum().to_dict()
        named = tallies.dropna(subset=["rep_id"]).groupby(["type", "window", "rep_id"])["events"].sum()
        by_window = {key: rows.droplevel([0, 1]) for key, rows in named.groupby(level=["type", "window"])}
        nobody = pd.Series(dtype="float64", index=pd.Index([], dtype=object))
        for m, windows in counted.items():
            keys = [(EVENT_METRICS[m], spans.index(w)) for w in windows]
            out[m] = [(by_window.get(k, nobody).astype("float64"), float(team.get(k, 0.0))) for k in keys]
    deals = [w for m in ("revenue", "conversions") for w in requests.get(m, [])]
    closings = q.first_closings(conn, min(a for a, _ in deals), max(b for _, b in deals)) if deals else None
    for m, windows in requests.items():
        if m in counted:
            continue
        lo, hi = min(a for a, _ in windows), max(b for _, b in windows)
        points = _points(conn, m, lo, hi, closings=closings)
        out[m] = [(pd.Series(points.per_rep(a, b), index=points.reps), points.total(a, b)) for a, b in windows]
    return out


def _points(conn: Connection, metric: str, lo: int, hi: int, *, closings: pd.DataFrame | None = None) -> Points:
    """The metric's points in ``[lo, hi)``, as :func:`leadscore.analytics.actuals.metric_points` makes them
    (revenue and conversions from ``closings`` when given: the first closings of a range holding ``[lo, hi)``;
    the sums are taken per window, so points outside it count nowhere)."""
    if metric in ("revenue", "conversions"):
        closings = q.first_closings(conn, lo, hi) if closings is None else closings
        won = closings[closings["won"]]
        at, reps_of = won["closed_at"].to_numpy(dtype=np.int64), won["rep_id"]
        amount = np.nan_to_num(won["amount"].to_numpy()) if metric == "revenue" else np.ones(len(won))
    elif metric == "expenses":
        spent = q.expenses_between(conn, lo, hi)
        at, reps_of, amount = spent["at"].to_numpy(dtype=np.int64), spent["rep_id"], spent["amount"].to_numpy()
    else:  # new_leads
        created = q.created_leads(conn, lo, hi)
        at, reps_of, amount = created["created"].to_numpy(dtype=np.int64), created["owner_id"], np.ones(len(created))
    reps = pd.Index(sorted(reps_of.dropna().unique()), dtype=object)
    return Points(at=at, amount=np.asarray(amount, dtype="float64"), rep=reps.get_indexer(reps_of), reps=reps)


def _period_points(conn: Connection, metric: str, lo: int, hi: int) -> Points:
    """The metric's points in ``[lo, hi)`` (day-aligned ns bounds). Event metrics come as one point per day and
    rep, summed by the read model: all a day-by-day chart can tell apart."""
    if metric not in EVENT_METRICS:
        return _points(conn, metric, lo, hi)
    starts = np.arange(lo, hi, DAY_NS, dtype=np.int64)
    tallies = q.tallies(conn, list(zip(starts.tolist(), (starts + DAY_NS).tolist(), strict=True)))
    mine = tallies[tallies["type"] == EVENT_METRICS[metric]]
    reps = pd.Index(sorted(mine["rep_id"].dropna().unique()), dtype=object)
    return Points(
        at=starts[mine["window"].to_numpy(dtype=np.int64)],
        amount=mine["events"].to_numpy(dtype="float64"),
        rep=reps.get_indexer(mine["rep_id"]),
        reps=reps,
    )


# ------------------------------------------------------------------------------------------------- the pages' extras


def lost_reasons(
    repo: Repository, start=None, end=None, *, group_by: str | None = None, period: str = "month", as_of=None
) -> pd.DataFrame:
    """:func:`leadscore.analytics.lost_reasons` of the stored data.

    The database sends the leads lost in the range (their first closing a ``lost`` event there) with their stage
    changes and closings; the pandas function counts the reasons on those rows alone.

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> _ = repo.ingest(
    ...     leads=pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-01-02"]}),
    ...     events=pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-05"], "type": ["lost"],
    ...                          "subtype": ["price"]}))
    >>> lost_reasons(repo)[["reason", "lost", "share"]].to_dict("records")
    [{'reason': 'price', 'lost': 1, 'share': 1.0}]
    """
    check_period(period)
    with repo.engine.connect() as conn:
        lo, hi = _range(conn, start, end)
        as_of_ts = _as_of(conn, as_of)
        attribute = _attribute(conn, group_by)
        leads, events = q.lost_cohort(conn, lo.value, hi.value, as_of_ts.value, attribute)
        data = _cohort_data(conn, leads, events, attribute)
    if data.leads.empty:
        # Nothing lost: the pandas function still needs a lead to date its cohort; one never lost adds nothing.
        never_lost = data.leads.reindex([0])
        never_lost["lead_id"] = ""
        never_lost["created_at"] = pd.Timestamp(min(lo.value, as_of_ts.value - 1), unit="ns", tz="UTC")
        data = CrmData(leads=never_lost, events=data.events)
    return pandas_lost_reasons(data, lo, hi, group_by=group_by, period=period, as_of=as_of_ts)


def goal_burnup(
    repo: Repository, metric: str, as_of=None, *, period: str = "month", scope: str = TEAM_SCOPE, target=None
) -> pd.DataFrame:
    """:func:`leadscore.analytics.goal_burnup` of the stored data and goals, from the metric's points of the
    period alone.

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> _ = repo.ingest(leads=pd.DataFrame({"lead_id": ["a"], "created_at": ["2024-01-01"]}),
    ...                 events=pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"],
    ...                                      "type": ["call"]}))
    >>> goal_burnup(repo, "calls", "2024-01-03", period="week", target=7)["cumulative"].tolist()[:3]
    [0.0, 1.0, nan]
    """
    check_metric(metric)
    check_period(period)
    goals = repo.load_goals() if target is None else None
    with repo.engine.connect() as conn:
        as_of_ts = _as_of(conn, as_of)
        _, lo, hi, _ = _bounds(as_of_ts, period)
        points = _period_points(conn, metric, lo, hi)
    return burnup_table(points.for_scope(scope), goals, metric, as_of_ts, period, scope, target)


def month_over_month_daily(repo: Repository, metric: str, as_of=None, *, scope: str = TEAM_SCOPE) -> pd.DataFrame:
    """:func:`leadscore.analytics.month_over_month_daily` of the stored data, from the metric's points of this
    month and last alone.

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> _ = repo.ingest(leads=pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01", "2024-02-01"]}))
    >>> month_over_month_daily(repo, "new_leads", "2024-02-02").iloc[:2].values.tolist()
    [[1.0, 1.0, 1.0], [2.0, nan, 1.0]]
    """
    check_metric(metric)
    with repo.engine.connect() as conn:
        as_of_ts = _as_of(conn, as_of)
        prev, _, hi, _ = _bounds(as_of_ts, "month")
        points = _period_points(conn, metric, prev, hi)
    return daily_table(points.for_scope(scope), as_of_ts)


def forecast(
    repo: Repository,
    pipeline: pd.DataFrame,
    as_of=None,
    *,
    period: str = "month",
    scope: str = TEAM_SCOPE,
    horizon_days: float = 90.0,
    level: float = 0.9,
) -> pd.DataFrame:
    """:func:`leadscore.analytics.forecast` of the stored data and goals.

    The database sends the leads created before ``as_of``, the closings before it and the priced stage changes
    of the leads still open: the pandas function forecasts from those (no other event is read).

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> _ = repo.ingest(
    ...     leads=pd.DataFrame({"lead_id": ["a", "b"], "created_at": ["2024-01-01"] * 2}),
    ...     events=pd.DataFrame({"event_id": ["1"], "lead_id": ["a"], "at": ["2024-01-02"], "type": ["won"],
    ...                          "amount": [100.0]}))
    >>> pipe = pd.DataFrame({"lead_id": ["b"], "probability": [0.5], "deal_value": [100.0]})
    >>> forecast(repo, pipe, "2024-01-10", horizon_days=22).set_index("metric").loc["revenue", "forecast"]
    np.float64(150.0)
    """
    _check_pipeline(pipeline)
    goals = repo.load_goals()
    with repo.engine.connect() as conn:
        as_of_ts = _as_of(conn, as_of)
        leads, events = q.pipeline_rows(conn, as_of_ts.value)
        unread = pipeline.loc[~pipeline["lead_id"].isin(leads["lead_id"]), "lead_id"]
        later = q.known_leads(conn, unread.tolist())
        data = _cohort_data(conn, leads, events, None)
    # Leads created from as_of on are known but left out, as pandas leaves them out; unknown ones stay, to be refused.
    pipeline = pipeline[~pipeline["lead_id"].isin(later)]
    data = CrmData(leads=data.leads, events=data.events, goals=goals)
    return pandas_forecast(data, pipeline, as_of_ts, period=period, scope=scope, horizon_days=horizon_days, level=level)


def owners(repo: Repository) -> list[str]:
    """The salespeople who own stored leads (the scopes a goal can be followed in besides the team), sorted.

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> _ = repo.ingest(leads=pd.DataFrame({"lead_id": ["a", "b", "c"], "created_at": ["2024-01-01"] * 3,
    ...                                     "owner_id": ["bob", None, "ann"]}))
    >>> owners(repo)
    ['ann', 'bob']
    """
    with repo.engine.connect() as conn:
        return q.owners(conn)
