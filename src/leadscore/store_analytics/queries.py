"""The SQL behind the store's analytics: each query reads only what one question needs, through an index.

Every statement is SQLAlchemy Core, the same on SQLite and PostgreSQL. Times cross the boundary as int64
nanoseconds on the Python side (what :mod:`leadscore.analytics` computes with) and as stored timestamps in SQL:
the store keeps microseconds, so a bound ``t`` of ``at >= t`` or ``at < t`` is rounded *up* to the microsecond,
which selects exactly the stored rows the nanosecond bound selects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from leadscore.analytics.performance import TALLY_TYPES
from leadscore.data.contracts import CLOSING_EVENT_TYPES, STAGES
from leadscore.data.times import DAY_NS
from leadscore.store.bulk import Bulk
from leadscore.store.read_model import attributed_rep, epoch_us
from leadscore.store.tables import (
    FUNNEL_CONDITION,
    UTCDateTime,
    event_days_table,
    events_table,
    expenses_table,
    first_touch_table,
    leads_table,
    stage_stays_table,
)

#: The figures counted per (window, type, rep): the columns of ``event_days``.
TALLY_COLUMNS = ("events", "cold_calls", "timed_calls", "call_seconds")
# Written as the partial index ix_events_closing's condition (on the alias ``c``), so that SQLite uses it.
_CLOSING_ALIAS = sa.text("c.type IN ({})".format(", ".join(f"'{t}'" for t in CLOSING_EVENT_TYPES)))
_NEVER = np.iinfo(np.int64).max


class stored_time(FunctionElement):  # noqa: N801 - a SQL function, named as SQL names them
    """SQL: a stored timestamp as the driver gives it fastest (SQLite: its text; PostgreSQL: epoch microseconds),
    for :meth:`~leadscore.store.bulk.Bulk.timestamps_from` to convert a whole column at once."""

    type = sa.types.NullType()
    inherit_cache = True


@compiles(stored_time, "sqlite")
def _stored_time_sqlite(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(stored_time, "postgresql")
def _stored_time_postgresql(element, compiler, **kw):
    return f"(extract(epoch from {compiler.process(element.clauses, **kw)}) * 1000000)::bigint"


def fetch(conn: Connection, stmt: sa.Executable) -> list[tuple]:
    """The rows of ``stmt`` as the driver's plain tuples (SQLAlchemy's Row objects cost more than the query
    when pandas builds a frame of 100,000 of them). Columns are read raw: times through :class:`stored_time`."""
    result = conn.execute(stmt)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


#: Rows fetched at a time by :func:`fetch_columns`: the Python objects of one chunk are all that is held at once.
CHUNK_ROWS = 50_000


def fetch_columns(conn: Connection, stmt: sa.Executable, kinds: Sequence[str]) -> list[np.ndarray]:
    """The columns of ``stmt`` as arrays, one per kind: ``"int"`` (int64), ``"float"`` (float64, None as NaN)
    or ``"object"``.

    Read :data:`CHUNK_ROWS` rows at a time and typed chunk by chunk, so a question over 200,000 leads never holds
    a million row tuples at once; and transposed without ``zip(*rows)``, whose iterator per row sets off the
    garbage collector's full passes over the whole process (slower than the query in a service holding a model).
    """
    parts: list[list[np.ndarray]] = [[] for _ in kinds]
    result = conn.execute(stmt)
    try:
        while rows := result.cursor.fetchmany(CHUNK_ROWS):
            for i, kind in enumerate(kinds):
                values = [row[i] for row in rows]
                if kind == "int":
                    parts[i].append(np.fromiter(values, dtype=np.int64, count=len(values)))
                elif kind == "float":
                    parts[i].append(np.array([np.nan if v is None else float(v) for v in values], dtype="float64"))
                else:
                    parts[i].append(np.array(values, dtype=object))
    finally:
        result.close()
    empty = {"int": np.int64, "float": np.float64}
    return [
        np.concatenate(p) if p else np.zeros(0, dtype=empty.get(k, object)) for p, k in zip(parts, kinds, strict=True)
    ]


def bound(ns: int) -> datetime:
    """An int64-nanosecond bound as the stored timestamp that selects the same rows (rounded up to the µs)."""
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").ceil("us").to_pydatetime()


def times(conn: Connection, values: Sequence) -> np.ndarray:
    """Stored times read with :class:`stored_time` as int64 nanoseconds (missing: int64 max)."""
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    # A frame column converts to objects at once; iterating it (list()) costs a Python call per value.
    raw = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else list(values)
    parsed = Bulk.for_connection(conn).timestamps_from(pd.Series(raw, dtype=object))
    ns = parsed.array.asi8.copy()
    ns[parsed.isna().to_numpy()] = _NEVER
    return ns


def extent(conn: Connection) -> tuple[int, int] | None:
    """(first, last) moment the store knows, in ns: its earliest and latest lead creation or event; None if empty.

    Four index probes (``ix_leads_created_at``, ``ix_events_at``).
    """
    e, leads = events_table, leads_table
    row = conn.execute(
        sa.select(
            stored_time(sa.select(sa.func.min(leads.c.created_at)).scalar_subquery()),
            stored_time(sa.select(sa.func.min(e.c.at)).scalar_subquery()),
            stored_time(sa.select(sa.func.max(leads.c.created_at)).scalar_subquery()),
            stored_time(sa.select(sa.func.max(e.c.at)).scalar_subquery()),
        )
    ).one()
    known = [t for t in times(conn, list(row)) if t != _NEVER]
    if not known:
        return None
    first = min(times(conn, [v for v in row[:2] if v is not None]))
    last = max(times(conn, [v for v in row[2:] if v is not None]))
    return int(first), int(last)


def _windows_cte(rows: list[tuple[int, int, int]], name: str) -> sa.CTE:
    values = sa.values(
        sa.column("idx", sa.Integer), sa.column("lo", UTCDateTime()), sa.column("hi", UTCDateTime()), name=name
    )
    return values.data([(i, bound(lo), bound(hi)) for i, lo, hi in rows]).cte(name)


def tallies(conn: Connection, windows: Sequence[tuple[int, int]]) -> pd.DataFrame:
    """Events of :data:`TALLY_TYPES` per window, type and rep (``rep_id`` None: no one), with cold calls, timed
    calls and call seconds.

    Whole days come from the read model ``event_days``, the partial days at a window's edges from the events
    (``ix_events_at``): the cost is the number of days asked about plus two days of events per window.
    """
    whole, edges = [], []
    for i, (lo, hi) in enumerate(windows):
        first_day, last_day = -(-lo // DAY_NS) * DAY_NS, hi // DAY_NS * DAY_NS
        if first_day >= last_day:
            edges.append((i, lo, hi))
            continue
        whole.append((i, first_day, last_day))
        edges += [(i, a, b) for a, b in ((lo, first_day), (last_day, hi)) if a < b]
    parts = []
    if whole:
        w, d = _windows_cte(whole, "whole"), event_days_table
        sums = [sa.func.sum(d.c[c]).label(c) for c in TALLY_COLUMNS]
        parts.append(
            sa.select(w.c.idx, d.c.type, d.c.rep_id, *sums)
            .select_from(w.join(d, sa.and_(d.c.day >= w.c.lo, d.c.day < w.c.hi)))
            .where(d.c.type.in_(TALLY_TYPES))
            .group_by(w.c.idx, d.c.type, d.c.rep_id)
        )
    if edges:
        w, e, leads = _windows_cte(edges, "edge"), events_table, leads_table
        is_call = e.c.type == "call"
        rep = attributed_rep(e, leads)
        parts.append(
            sa.select(
                w.c.idx,
                e.c.type,
                rep.label("rep_id"),
                sa.func.count().label("events"),
                sa.func.sum(sa.case((sa.and_(is_call, e.c.subtype == "cold"), 1), else_=0)).label("cold_calls"),
                sa.func.sum(sa.case((sa.and_(is_call, e.c.duration_s.is_not(None)), 1), else_=0)).label("timed_calls"),
                sa.func.coalesce(sa.func.sum(sa.case((is_call, e.c.duration_s))), 0.0).label("call_seconds"),
            )
            .select_from(
                w.join(e, sa.and_(e.c.at >= w.c.lo, e.c.at < w.c.hi)).join(leads, leads.c.lead_id == e.c.lead_id)
            )
            .where(e.c.type.in_(TALLY_TYPES))
            .group_by(w.c.idx, e.c.type, rep)
        )
    rows = [r for part in parts for r in fetch(conn, part)]
    frame = pd.DataFrame.from_records(rows, columns=["window", "type", "rep_id", *TALLY_COLUMNS])
    return frame.astype({"window": "int64", **{c: "float64" for c in TALLY_COLUMNS}})


def first_closings(conn: Connection, lo: int, hi: int) -> pd.DataFrame:
    """Leads whose first ``won``/``lost`` event falls in ``[lo, hi)`` (ns), with that event.

    The first is the earliest, then the smallest ``event_id`` (as the pandas path orders the events). Columns
    ``lead_id``, ``closed_at`` (ns), ``won``, ``amount``, ``rep_id`` (the event's, else the owner's), ordered by
    ``closed_at`` then ``lead_id``. Reads the closings in the range and one index probe per closing.
    """
    c, earlier, leads = events_table.alias("c"), events_table.alias("earlier"), leads_table
    before = sa.or_(earlier.c.at < c.c.at, sa.and_(earlier.c.at == c.c.at, earlier.c.event_id < c.c.event_id))
    has_earlier = (
        sa.select(sa.literal(1))
        .where(earlier.c.lead_id == c.c.lead_id, sa.text(_CLOSING_ALIAS.text.replace("c.", "earlier.")), before)
        .exists()
    )
    stmt = (
        sa.select(
            c.c.lead_id, stored_time(c.c.at), c.c.type, c.c.amount, sa.func.coalesce(c.c.rep_id, leads.c.owner_id)
        )
        .select_from(c.join(leads, leads.c.lead_id == c.c.lead_id))
        .where(_CLOSING_ALIAS, c.c.at >= bound(lo), c.c.at < bound(hi), ~has_earlier)
        .order_by(c.c.at, c.c.lead_id, c.c.event_id)
    )
    rows = fetch(conn, stmt)
    frame = pd.DataFrame.from_records(rows, columns=["lead_id", "closed_at", "type", "amount", "rep_id"])
    return pd.DataFrame(
        {
            "lead_id": frame["lead_id"].astype(object),
            "closed_at": times(conn, frame["closed_at"]),
            "won": (frame["type"] == "won").to_numpy(dtype=bool),
            "amount": pd.to_numeric(frame["amount"]).to_numpy(dtype="float64"),
            "rep_id": frame["rep_id"].astype(object),
        }
    )


def lead_facts(conn: Connection, created_before: int, as_of: int) -> pd.DataFrame:
    """Per lead created before ``created_before`` (ns): ``owner_id``, ``created``, ``first_touch`` and ``closed``
    (its first closing), the last two before ``as_of`` only (int64 max otherwise), in ns, ordered by lead.

    One row per lead from ``ix_leads_created_at``, its first touch from the read model and its first closing
    by one probe of ``ix_events_closing``: events are not read.
    """
    leads, touch, c = leads_table, first_touch_table, events_table.alias("c")
    closed = sa.select(sa.func.min(c.c.at)).where(c.c.lead_id == leads.c.lead_id, _CLOSING_ALIAS).scalar_subquery()
    stmt = (
        sa.select(
            leads.c.lead_id,
            leads.c.owner_id,
            stored_time(leads.c.created_at),
            stored_time(touch.c.at),
            stored_time(closed),
        )
        .select_from(leads.outerjoin(touch, touch.c.lead_id == leads.c.lead_id))
        .where(leads.c.created_at < bound(created_before))
        .order_by(leads.c.lead_id)
    )
    rows = fetch(conn, stmt)
    frame = pd.DataFrame.from_records(rows, columns=["lead_id", "owner_id", "created", "first_touch", "closed"])
    out = pd.DataFrame({"lead_id": frame["lead_id"].astype(object), "owner_id": frame["owner_id"].astype(object)})
    for column in ("created", "first_touch", "closed"):
        ns = times(conn, frame[column])
        out[column] = ns if column == "created" else np.where(ns < as_of, ns, _NEVER)
    return out


def created_leads(conn: Connection, lo: int, hi: int) -> pd.DataFrame:
    """``owner_id`` and ``created`` (ns) of the leads created in ``[lo, hi)``, by ``ix_leads_created_at``."""
    leads = leads_table
    stmt = (
        sa.select(leads.c.owner_id, stored_time(leads.c.created_at))
        .where(leads.c.created_at >= bound(lo), leads.c.created_at < bound(hi))
        .order_by(leads.c.lead_id)
    )
    rows = fetch(conn, stmt)
    frame = pd.DataFrame.from_records(rows, columns=["owner_id", "created"])
    return pd.DataFrame({"owner_id": frame["owner_id"].astype(object), "created": times(conn, frame["created"])})


def expenses_between(conn: Connection, lo: int, hi: int) -> pd.DataFrame:
    """``at`` (ns), ``amount`` and ``rep_id`` of the expenses in ``[lo, hi)``, in stored order (at, id)."""
    x = expenses_table
    stmt = (
        sa.select(stored_time(x.c.at), x.c.amount, x.c.rep_id)
        .where(x.c.at >= bound(lo), x.c.at < bound(hi))
        .order_by(x.c.at, x.c.id)
    )
    rows = fetch(conn, stmt)
    frame = pd.DataFrame.from_records(rows, columns=["at", "amount", "rep_id"])
    return pd.DataFrame(
        {
            "at": times(conn, frame["at"]),
            "amount": pd.to_numeric(frame["amount"]).to_numpy(dtype="float64"),
            "rep_id": frame["rep_id"].astype(object),
        }
    )


def cohort(conn: Connection, lo: int, hi: int, as_of: int, attribute: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The funnel's rows of the leads created in ``[lo, hi)`` before ``as_of``: the leads (with ``attribute``
    as a column when given) and their stage changes and closings before ``as_of``, in stored order.

    Both come from indexes (``ix_leads_created_at``, then ``ix_events_funnel`` per lead): the funnel reads no
    other event.
    """
    leads, e = leads_table, events_table
    created = sa.and_(
        leads.c.created_at >= bound(lo), leads.c.created_at < bound(hi), leads.c.created_at < bound(as_of)
    )
    # Read as JSON text on both databases and parsed here, so a value comes back typed as the full read types it.
    extra = [sa.cast(leads.c.attributes[attribute], sa.Text).label("attribute")] if attribute else []
    lead_rows = fetch(
        conn,
        sa.select(leads.c.lead_id, stored_time(leads.c.created_at), leads.c.owner_id, leads.c.source, *extra)
        .where(created)
        .order_by(leads.c.lead_id),
    )
    event_rows = fetch(
        conn,
        sa.select(e.c.event_id, e.c.lead_id, stored_time(e.c.at), e.c.type, e.c.stage, e.c.amount)
        .select_from(leads.join(e, e.c.lead_id == leads.c.lead_id))
        .where(created, sa.text(f"events.{FUNNEL_CONDITION}"), e.c.at < bound(as_of))
        .order_by(e.c.lead_id, e.c.at, e.c.event_id),
    )
    columns = ["lead_id", "created_at", "owner_id", "source", *(["attribute"] if attribute else [])]
    lead_frame = pd.DataFrame.from_records(lead_rows, columns=columns)
    if attribute:
        lead_frame["attribute"] = [None if v is None else json.loads(v) for v in lead_frame["attribute"]]
    events = pd.DataFrame.from_records(event_rows, columns=["event_id", "lead_id", "at", "type", "stage", "amount"])
    return lead_frame, events


def _in_cohort(lo: int, hi: int, as_of: int) -> sa.ColumnElement:
    leads = leads_table
    return sa.and_(leads.c.created_at >= bound(lo), leads.c.created_at < bound(hi), leads.c.created_at < bound(as_of))


def cohort_leads(conn: Connection, lo: int, hi: int, as_of: int, attribute: str | None) -> pd.DataFrame:
    """The leads created in ``[lo, hi)`` before ``as_of``: ``lead_id``, ``created`` (ns), ``owner_id``,
    ``source`` and ``attribute`` (JSON text) when given, by lead id, from ``ix_leads_created_at``."""
    leads = leads_table
    extra = [sa.cast(leads.c.attributes[attribute], sa.Text)] if attribute else []
    stmt = (
        sa.select(leads.c.lead_id, epoch_us(leads.c.created_at), leads.c.owner_id, leads.c.source, *extra)
        .where(_in_cohort(lo, hi, as_of))
        .order_by(leads.c.lead_id)
    )
    columns = fetch_columns(conn, stmt, ["object", "int", "object", "object", *(["object"] if attribute else [])])
    frame = pd.DataFrame(
        {"lead_id": columns[0], "created": columns[1] * 1000, "owner_id": columns[2], "source": columns[3]}
    )
    if attribute:
        frame["attribute"] = np.array(columns[4], dtype=object)
    return frame


def _ceil_us(ns: int) -> int:
    """A nanosecond bound as the microsecond one selecting the same stored times (``x_us < _ceil_us(t)`` is
    ``x < t``)."""
    return -(-int(ns) // 1000)


def cohort_funnel(conn: Connection, lo: int, hi: int, as_of: int, *, stays: bool = True) -> pd.DataFrame:
    """Per lead created in ``[lo, hi)`` before ``as_of``, from the read model ``lead_stage_stays`` and what it
    knew before ``as_of``: ``closing`` (-1 won, -2 lost, 0 open), ``closed_us`` and ``amount`` of its first
    closing; with ``stays``, also ``max_rank`` (the furthest stage it entered) and ``stay_us_1`` ...
    ``stay_us_5``, the time it spent in each stage rank over its stays completed before ``as_of`` (it left the
    stage after some time in it; -1: none).

    One range of ``ix_lead_stage_stays_cohort``, grouped in its order (no sort): one row per lead comes back,
    no lead or event row is read.
    """
    s = stage_stays_table
    until = _ceil_us(as_of)
    closing = s.c.stage_rank < 0
    columns = [
        s.c.lead_id,
        sa.func.coalesce(sa.func.min(sa.case((closing, s.c.stage_rank))), 0),
        sa.func.coalesce(sa.func.min(sa.case((closing, s.c.entered_us))), -1),
        sa.func.min(sa.case((closing, s.c.amount))),
    ]
    kinds = ["object", "int", "int", "float"]
    if stays:
        done = sa.and_(s.c.left_us.is_not(None), s.c.left_us < until, s.c.left_us > s.c.entered_us)
        columns.append(sa.func.coalesce(sa.func.max(s.c.stage_rank), 1))
        for rank in RANKS:
            spent = sa.func.sum(sa.case((sa.and_(s.c.stage_rank == rank, done), s.c.left_us - s.c.entered_us)))
            columns.append(sa.cast(sa.func.coalesce(spent, -1), sa.BigInteger))  # PostgreSQL sums as numeric
        kinds += ["int"] * (1 + len(RANKS))
    stmt = (
        sa.select(*columns)
        .where(s.c.created_us >= _ceil_us(lo), s.c.created_us < _ceil_us(min(hi, as_of)), s.c.entered_us < until)
        .group_by(s.c.created_us, s.c.lead_id)
    )
    values = fetch_columns(conn, stmt, kinds)
    names = ["lead_id", "closing", "closed_us", "amount"]
    if stays:
        names += ["max_rank", *(f"stay_us_{rank}" for rank in RANKS)]
    return pd.DataFrame(dict(zip(names, values, strict=True)))


#: The stage ranks a stay can have (1: the first stage).
RANKS = tuple(range(1, len(STAGES) + 1))


def has_attribute(conn: Connection, name: str) -> bool:
    """Whether any stored lead has the attribute ``name``."""
    leads = leads_table
    stmt = sa.select(sa.literal(1)).where(leads.c.attributes[name].as_string().is_not(None)).limit(1)
    return conn.execute(stmt).first() is not None


def attribute_names(conn: Connection) -> list[str]:
    """Every attribute name a stored lead has (a scan of the leads: for error messages only)."""
    names: set[str] = set()
    for (attributes,) in conn.execute(sa.select(leads_table.c.attributes)):
        names.update(attributes or {})
    return sorted(names)


def _first_closing_ids(lo: int, hi: int, closing_type: str) -> sa.Select:
    """SQL: ids of the leads whose first ``won``/``lost`` event is of ``closing_type`` and falls in ``[lo, hi)``
    (the closings in the range, each with one probe of ``ix_events_closing`` for an earlier one)."""
    c, earlier = events_table.alias("c"), events_table.alias("earlier")
    before = sa.or_(earlier.c.at < c.c.at, sa.and_(earlier.c.at == c.c.at, earlier.c.event_id < c.c.event_id))
    has_earlier = (
        sa.select(sa.literal(1))
        .where(earlier.c.lead_id == c.c.lead_id, sa.text(_CLOSING_ALIAS.text.replace("c.", "earlier.")), before)
        .exists()
    )
    return sa.select(c.c.lead_id).where(
        _CLOSING_ALIAS, c.c.type == closing_type, c.c.at >= bound(lo), c.c.at < bound(hi), ~has_earlier
    )


_EVENT_COLUMNS = ["event_id", "lead_id", "at", "type", "subtype", "stage", "amount", "rep_id"]


def _event_rows(conn: Connection, where: list) -> pd.DataFrame:
    """The events matching ``where`` with the columns a small data set's events need, ordered as stored."""
    e = events_table
    rows = fetch(
        conn,
        sa.select(
            e.c.event_id, e.c.lead_id, stored_time(e.c.at), e.c.type, e.c.subtype, e.c.stage, e.c.amount, e.c.rep_id
        )
        .where(*where)
        .order_by(e.c.lead_id, e.c.at, e.c.event_id),
    )
    return pd.DataFrame.from_records(rows, columns=_EVENT_COLUMNS)


def _lead_rows(conn: Connection, *where, attribute: str | None = None) -> pd.DataFrame:
    """The leads matching ``where`` (with ``attribute`` as a column when given), ordered by id."""
    leads = leads_table
    extra = [sa.cast(leads.c.attributes[attribute], sa.Text).label("attribute")] if attribute else []
    rows = fetch(
        conn,
        sa.select(leads.c.lead_id, stored_time(leads.c.created_at), leads.c.owner_id, leads.c.source, *extra)
        .where(*where)
        .order_by(leads.c.lead_id),
    )
    columns = ["lead_id", "created_at", "owner_id", "source", *(["attribute"] if attribute else [])]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    if attribute:
        frame["attribute"] = [None if v is None else json.loads(v) for v in frame["attribute"]]
    return frame


def lost_cohort(
    conn: Connection, lo: int, hi: int, as_of: int, attribute: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The leads lost in ``[lo, hi)`` before ``as_of`` (their first closing a ``lost`` event there), created
    before ``as_of``, with their stage changes and closings before ``as_of`` (reason: ``subtype``; ``rep_id``).

    The losses come from ``ix_events_closing``, their leads' rows from ``ix_events_funnel``: nothing else is read.
    """
    leads, e = leads_table, events_table
    lost = _first_closing_ids(lo, min(hi, as_of), "lost").scalar_subquery()
    lead_frame = _lead_rows(conn, leads.c.lead_id.in_(lost), leads.c.created_at < bound(as_of), attribute=attribute)
    created = sa.select(leads.c.lead_id).where(leads.c.lead_id.in_(lost), leads.c.created_at < bound(as_of))
    events = _event_rows(
        conn, [e.c.lead_id.in_(created.scalar_subquery()), sa.text(f"events.{FUNNEL_CONDITION}"), e.c.at < bound(as_of)]
    )
    return lead_frame, events


def pipeline_rows(conn: Connection, as_of: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a forecast at ``as_of`` reads: the leads created before it, every closing before it, and the stage
    changes with an amount before it of the leads still open then (their latest deal value).

    Leads by ``ix_leads_created_at``, closings by ``ix_events_closing``; other events are not read.
    """
    leads, e, c = leads_table, events_table, events_table.alias("c")
    lead_frame = _lead_rows(conn, leads.c.created_at < bound(as_of))
    closed = sa.select(sa.literal(1)).where(c.c.lead_id == e.c.lead_id, _CLOSING_ALIAS, c.c.at < bound(as_of))
    priced = sa.and_(e.c.type == "stage_changed", e.c.amount.is_not(None), ~closed.exists())
    events = _event_rows(conn, [e.c.at < bound(as_of), sa.or_(e.c.type.in_(CLOSING_EVENT_TYPES), priced)])
    return lead_frame, events


def known_leads(conn: Connection, lead_ids: Sequence[str]) -> set[str]:
    """Which of ``lead_ids`` are stored (for checking the few ids a question names beyond those it read)."""
    if not len(lead_ids):
        return set()
    leads = leads_table
    return {r[0] for r in fetch(conn, sa.select(leads.c.lead_id).where(leads.c.lead_id.in_(list(lead_ids))))}


def owners(conn: Connection) -> list[str]:
    """The distinct owners of the stored leads, sorted."""
    leads = leads_table
    stmt = sa.select(leads.c.owner_id).where(leads.c.owner_id.is_not(None)).distinct().order_by(leads.c.owner_id)
    return [str(r[0]) for r in fetch(conn, stmt)]
