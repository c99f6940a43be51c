"""The read model the analytics are answered from, kept up to date in the same transaction as every ingest.

Two tables (:mod:`leadscore.store.tables`), each a pure function of the stored leads and events:

- ``event_days``: events counted per UTC day, type and the salesperson they count for (the event's ``rep_id``,
  else the lead's owner), with cold calls, timed calls and call seconds. A day is *recounted* from its events
  whenever an ingest touches it (events of that day inserted, or a lead whose events of that day name no rep
  changing owner), so the read model can never drift from the events: there is no increment to lose or repeat.
- ``lead_first_touch``: each lead's first outbound event. Events are only ever added (an event id's content can
  never change), so the first touch of a lead only moves earlier: ``min(stored, new)`` is exact.
- ``lead_stage_stays``: each lead's stays in the funnel's stages (entered, left), as the pandas funnel
  (:mod:`leadscore.analytics.funnel`) defines them. A lead's stays are *recomputed* from its lead row, stage
  changes and first closing whenever an ingest touches them (the lead written, or a stage change or closing of
  it inserted), so, like the day counts, they cannot drift from the events.

Recounting reads the touched days' events through ``ix_events_at``: a CRM's batch of today's events recounts
today; a bulk load recounts the span it covers once per chunk. On PostgreSQL, recounts take a transaction-level
advisory lock, so two concurrent ingests touching the same day recount it one after the other (the second sees
the first's events), never both from a snapshot missing the other's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from leadscore.data.contracts import COLD_CALL_SUBTYPE, OUTBOUND_EVENT_TYPES, STAGES
from leadscore.store.tables import (
    UTCDateTime,
    event_days_table,
    events_table,
    first_touch_table,
    leads_table,
    stage_stays_table,
)

# Any constant: the key of the advisory lock that serialises recounts on PostgreSQL.
_RECOUNT_LOCK = 7_140_001
_STAGED_EVENTS = sa.table(
    "staging_events", sa.column("lead_id"), sa.column("at", UTCDateTime()), sa.column("type"), sa.column("rep_id")
)
_STAGED_LEADS = sa.table("staging_leads", sa.column("lead_id"), sa.column("owner_id"))


class day_start(FunctionElement):  # noqa: N801 - a SQL function, named as SQL names them
    """SQL: the UTC midnight starting the day of a stored timestamp (the same value on SQLite and PostgreSQL)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(day_start, "sqlite")
def _day_start_sqlite(element, compiler, **kw):
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (see UTCDateTime): the date, then midnight in the same format.
    return f"(substr({compiler.process(element.clauses, **kw)}, 1, 10) || ' 00:00:00.000000')"


@compiles(day_start, "postgresql")
def _day_start_postgresql(element, compiler, **kw):
    return f"(date_trunc('day', {compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


class epoch_us(FunctionElement):  # noqa: N801 - a SQL function, named as SQL names them
    """SQL: a stored timestamp as integer microseconds since the epoch (exact on SQLite and PostgreSQL)."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element, compiler, **kw):
    # 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds from the first 19 characters, then the six digits after the dot.
    value = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(strftime('%s', substr({value}, 1, 19)) AS INTEGER) * 1000000 + CAST(substr({value}, 21, 6) AS INTEGER))"
    )


@compiles(epoch_us, "postgresql")
def _epoch_us_postgresql(element, compiler, **kw):
    return f"(extract(epoch from {compiler.process(element.clauses, **kw)}) * 1000000)::bigint"


def attributed_rep(events: sa.Table | sa.Alias, leads: sa.Table | sa.Alias) -> sa.ColumnElement:
    """SQL: who an event counts for, its ``rep_id`` else its lead's owner (None: no one)."""
    return sa.func.coalesce(events.c.rep_id, leads.c.owner_id)


def day_counts(lo: datetime, hi: datetime) -> sa.Select:
    """The ``event_days`` rows of the events with ``lo <= at < hi``, counted from the events themselves."""
    e, leads = events_table, leads_table
    is_call = e.c.type == "call"
    day = day_start(e.c.at)
    rep = attributed_rep(e, leads)
    return (
        sa.select(
            day.label("day"),
            e.c.type,
            rep.label("rep_id"),
            sa.func.count().label("events"),
            sa.func.sum(sa.case((sa.and_(is_call, e.c.subtype == COLD_CALL_SUBTYPE), 1), else_=0)).label("cold_calls"),
            sa.func.sum(sa.case((sa.and_(is_call, e.c.duration_s.is_not(None)), 1), else_=0)).label("timed_calls"),
            sa.func.coalesce(sa.func.sum(sa.case((is_call, e.c.duration_s))), 0.0).label("call_seconds"),
        )
        .select_from(e.join(leads, leads.c.lead_id == e.c.lead_id))
        .where(e.c.at >= lo, e.c.at < hi)
        .group_by(day, e.c.type, rep)
    )


def recount_days(conn: Connection, days: Iterable[datetime]) -> None:
    """Recount ``event_days`` for these days (UTC midnights) from their events; consecutive days in one go."""
    runs = _runs(sorted(set(days)))
    if not runs:
        return
    _lock_recounts(conn)
    t = event_days_table
    columns = ["day", "type", "rep_id", "events", "cold_calls", "timed_calls", "call_seconds"]
    for lo, hi in runs:
        conn.execute(sa.delete(t).where(t.c.day >= lo, t.c.day < hi))
        conn.execute(sa.insert(t).from_select(columns, day_counts(lo, hi)))


def _lock_recounts(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_RECOUNT_LOCK)))


def _runs(days: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted days as half-open runs of consecutive days: [d, d + 1 day) merged while they touch."""
    runs: list[tuple[datetime, datetime]] = []
    for day in days:
        end = day + timedelta(days=1)
        if runs and runs[-1][1] >= day:
            runs[-1] = (runs[-1][0], max(runs[-1][1], end))
        else:
            runs.append((day, end))
    return runs


def staged_event_days(conn: Connection) -> list[datetime]:
    """The days of the events in this transaction's ``staging_events`` table."""
    day = day_start(_STAGED_EVENTS.c.at)
    return list(conn.execute(sa.select(day).distinct()).scalars())


def reassigned_days(conn: Connection) -> list[datetime]:
    """Days holding events that count for their lead's owner (no ``rep_id``) of a staged lead whose owner is
    about to change: their counts move to the new owner. Call before the staged leads are written."""
    s, leads, e = _STAGED_LEADS, leads_table, events_table
    day = day_start(e.c.at)
    stmt = (
        sa.select(day)
        .distinct()
        .select_from(s.join(leads, leads.c.lead_id == s.c.lead_id).join(e, e.c.lead_id == s.c.lead_id))
        .where(leads.c.owner_id.is_distinct_from(s.c.owner_id), e.c.rep_id.is_(None))
    )
    return list(conn.execute(stmt).scalars())


def advance_first_touches(conn: Connection, source: sa.Table | sa.TableClause = _STAGED_EVENTS) -> None:
    """Move each lead's first touch earlier to its first outbound event in ``source`` (the staged events)."""
    firsts = (
        sa.select(source.c.lead_id, sa.func.min(source.c.at))
        .where(source.c.type.in_(OUTBOUND_EVENT_TYPES))
        .group_by(source.c.lead_id)
    )
    t = first_touch_table
    insert = _dialect_insert(conn, t).from_select(["lead_id", "at"], firsts)
    earlier = sa.case((insert.excluded.at < t.c.at, insert.excluded.at), else_=t.c.at)
    conn.execute(insert.on_conflict_do_update(index_elements=["lead_id"], set_={"at": earlier}))


def stage_rank(stage: sa.ColumnElement) -> sa.ColumnElement:
    """SQL: the 1-based position of a stage in :data:`~leadscore.data.contracts.STAGES`, 0 for any other name
    (as :func:`leadscore.analytics.funnel.stage_rank`)."""
    return sa.case({name: i + 1 for i, name in enumerate(STAGES)}, value=stage, else_=0)


def _stays(leads_of: sa.Select | None) -> sa.Select:
    """SQL: the rows of ``lead_stage_stays`` of the leads ``leads_of`` selects (None: every lead), the stays as
    :class:`leadscore.analytics.funnel._Cohort` computes them with nothing unknown:

    the lead's points in time order (its creation, in ``new``; its stage changes up to its first closing; that
    closing, the earliest then smallest event id), ties by kind then event id; a stage change to the stage the
    lead is in is no new stay; a stay runs to the next point. Kept: the stays in a known stage (rank 1 or more),
    even of no length (their ranks tell how far the lead got), and the first closing (rank -1 won, -2 lost).
    """
    e, leads = events_table, leads_table

    def mine(column: sa.ColumnElement) -> sa.ColumnElement:
        return sa.true() if leads_of is None else column.in_(leads_of.scalar_subquery())

    nth = sa.func.row_number().over(partition_by=e.c.lead_id, order_by=(e.c.at, e.c.event_id))
    closings = (
        sa.select(e.c.lead_id, e.c.at, e.c.type, e.c.amount, nth.label("nth"))
        .where(sa.text("events.type IN ('won', 'lost')"), mine(e.c.lead_id))
        .subquery("closings")
    )
    first = (
        sa.select(closings.c.lead_id, closings.c.at, closings.c.type, closings.c.amount)
        .where(closings.c.nth == 1)
        .subquery("first_closing")
    )
    none, empty = sa.literal_column("NULL"), sa.literal_column("''")
    created = sa.select(
        leads.c.lead_id,
        leads.c.created_at.label("at"),
        sa.literal_column("0").label("ord"),
        empty.label("event_id"),
        sa.literal_column("1").label("stage_rank"),
        sa.cast(none, sa.Float).label("amount"),
    ).where(mine(leads.c.lead_id))
    changes = (
        sa.select(
            e.c.lead_id, e.c.at, sa.literal_column("1"), e.c.event_id, stage_rank(e.c.stage), sa.cast(none, sa.Float)
        )
        .select_from(e.outerjoin(first, first.c.lead_id == e.c.lead_id))
        .where(e.c.type == "stage_changed", mine(e.c.lead_id), sa.or_(first.c.at.is_(None), e.c.at <= first.c.at))
    )
    closing_rank = sa.case((first.c.type == "won", -1), else_=-2)
    closed = sa.select(first.c.lead_id, first.c.at, sa.literal_column("2"), empty, closing_rank, first.c.amount)
    points = sa.union_all(created, changes, closed).subquery("points")
    p = points.c
    in_order = {"partition_by": p.lead_id, "order_by": (p.at, p.ord, p.event_id)}
    marked = sa.select(
        p.lead_id,
        p.at,
        p.ord,
        p.event_id,
        p.stage_rank,
        p.amount,
        sa.func.lag(p.stage_rank).over(**in_order).label("prev"),
    ).subquery("marked")
    m = marked.c
    kept = (
        sa.select(m.lead_id, m.at, m.ord, m.event_id, m.stage_rank, m.amount)
        .where(sa.or_(m.ord != 1, m.prev.is_(None), m.stage_rank != m.prev))
        .subquery("kept")
    )
    k = kept.c
    left = sa.func.lead(k.at).over(partition_by=k.lead_id, order_by=(k.at, k.ord, k.event_id))
    stays = sa.select(k.lead_id, k.stage_rank, k.at, k.ord, k.amount, left.label("left_at")).subquery("stays")
    s = stays.c
    return (
        sa.select(
            s.lead_id,
            epoch_us(leads.c.created_at),
            s.stage_rank,
            epoch_us(s.at),
            sa.case((s.ord == 2, None), else_=epoch_us(s.left_at)),
            s.amount,
        )
        .select_from(stays.join(leads, leads.c.lead_id == s.lead_id))
        .where(sa.or_(s.ord == 2, s.stage_rank >= 1))
    )


def recompute_stays(conn: Connection, leads_of: sa.Select | None = None) -> None:
    """Recompute the stage stays of the leads ``leads_of`` selects (None: all) from their rows."""
    _lock_recounts(conn)
    t = stage_stays_table
    delete = sa.delete(t)
    if leads_of is not None:
        delete = delete.where(t.c.lead_id.in_(leads_of.scalar_subquery()))
    conn.execute(delete)
    columns = ["lead_id", "created_us", "stage_rank", "entered_us", "left_us", "amount"]
    conn.execute(sa.insert(t).from_select(columns, _stays(leads_of)))


def staged_funnel_leads() -> sa.Select:
    """SQL: the leads with a stage change or closing among this transaction's staged events."""
    s = _STAGED_EVENTS
    return sa.select(s.c.lead_id).where(s.c.type.in_(("stage_changed", "won", "lost"))).distinct()


def staged_leads() -> sa.Select:
    """SQL: the leads of this transaction's staged leads."""
    return sa.select(_STAGED_LEADS.c.lead_id)


def rebuild(conn: Connection) -> None:
    """Recompute the whole read model from the stored events (to repair it by hand)."""
    rebuild_activity(conn)
    recompute_stays(conn)


def rebuild_activity(conn: Connection) -> None:
    """Recompute ``event_days`` and ``lead_first_touch`` from the stored events (migration 0004)."""
    conn.execute(sa.delete(first_touch_table))
    advance_first_touches(conn, events_table)
    bounds = conn.execute(sa.select(sa.func.min(events_table.c.at), sa.func.max(events_table.c.at))).one()
    conn.execute(sa.delete(event_days_table))
    if bounds[0] is not None:
        first = bounds[0].replace(hour=0, minute=0, second=0, microsecond=0)
        recount_days(conn, [first + timedelta(days=d) for d in range((bounds[1] - first).days + 1)])


def _dialect_insert(conn: Connection, table: sa.Table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
