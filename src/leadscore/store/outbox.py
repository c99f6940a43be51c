"""The webhooks' durable outbox: events written in the transaction of the change they report, then delivered.

The life of an event:

- *enqueued*: :func:`enqueue` (or :func:`enqueue_many`) runs in the caller's transaction. It stores the event in
  ``webhook_outbox`` and one ``pending`` row in ``webhook_deliveries`` per active subscription that wants its
  kind, so the event exists if and only if the change it reports was committed. An event no subscription wants
  is not stored at all;
- *claimed*: a worker takes a batch of due deliveries (:func:`claim`), leasing them (``claimed_by``,
  ``lease_until``) and counting the attempt. Only the earliest pending delivery of an ``ordering_key`` (a lead)
  per subscription is ever claimable, so a lead's events reach a subscriber in order; a lease that runs out (the
  worker was killed mid-delivery) makes the row claimable again, which is why delivery is *at least once*;
- *marked*: the outcome of an attempt (:func:`mark`): ``delivered``, or back to ``pending`` with the next
  attempt's time, or ``dead`` (dead-lettered) after the last attempt. A dead delivery no longer holds back the
  lead's later events; :func:`redeliver` puts dead (or chosen) deliveries back in the queue.

Reads for people: a subscription's delivery log (:func:`deliveries`) and its counts (:func:`counts`);
:func:`prune` forgets finished deliveries after the retention period.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from leadscore.store.tables import (
    PENDING_DELIVERY,
    webhook_deliveries_table,
    webhook_outbox_table,
    webhook_subscriptions_table,
)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES: tuple[str, ...] = (PENDING, DELIVERED, DEAD)

#: The event kinds a subscription may ask for, and what each one reports (its payload is in the README).
EVENT_KINDS: Mapping[str, str] = {
    "lead.grade_changed": "a lead's kept score moved into another grade (out of its previous one)",
    "lead.needs_follow_up": "a lead's needs-follow-up flag turned on",
    "goal.behind": "a goal fell behind the pace its period needs",
    "model.promoted": "a new model version became the champion",
    "drift.detected": "a model input or the score distribution drifted over its threshold",
    "webhook.ping": "a test event, sent to one subscription on request",
}


@dataclass(frozen=True)
class NewEvent:
    """An event to enqueue: its kind, payload and, optionally, its lead, ordering and deduplication keys.

    ``ordering_key`` defaults to ``lead:<lead_id>`` for a lead's events, else to the kind; ``subscription_id``
    sends it to that subscription alone (whatever the kinds it asked for).
    """

    kind: str
    payload: Mapping[str, Any]
    lead_id: str | None = None
    ordering_key: str | None = None
    dedupe_key: str | None = None
    subscription_id: int | None = None

    def key(self) -> str:
        if self.ordering_key:
            return self.ordering_key
        return f"lead:{self.lead_id}" if self.lead_id is not None else self.kind


@dataclass(frozen=True)
class Claimed:
    """A delivery taken by a worker, with all it needs to send it."""

    delivery_id: int
    attempts: int
    subscription_id: int
    url: str
    secret: str
    sequence: int
    event_id: str
    kind: str
    lead_id: str | None
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: delivered, or not (then ``retry_at``, or None for dead-lettered)."""

    delivery_id: int
    delivered: bool
    response_code: int | None = None
    error: str | None = None
    retry_at: datetime | None = None


@dataclass
class Enqueued:
    """How many events and deliveries :func:`enqueue_many` stored, and the stored events' ids by position."""

    events: int = 0
    deliveries: int = 0
    event_ids: dict[int, str] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`EVENT_KINDS`; ValueError naming the known kinds otherwise."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}; kinds: {sorted(EVENT_KINDS)}")
    return kind


def subscribers(conn: Connection, kinds: Sequence[str] | None = None) -> dict[str, list[int]]:
    """The active subscriptions wanting each kind (of ``kinds``, default all): kind -> subscription ids.

    Subscriptions are few, so they are read whole and matched here (the same on both databases).
    """
    t = webhook_subscriptions_table
    wanted = set(EVENT_KINDS if kinds is None else kinds)
    found: dict[str, list[int]] = {}
    for sub_id, sub_kinds in conn.execute(sa.select(t.c.id, t.c.kinds).where(t.c.active).order_by(t.c.id)):
        for kind in set(sub_kinds or ()) & wanted:
            found.setdefault(kind, []).append(int(sub_id))
    return found


def enqueue(
    conn: Connection,
    kind: str,
    payload: Mapping[str, Any],
    *,
    lead_id: str | None = None,
    ordering_key: str | None = None,
    dedupe_key: str | None = None,
    subscription_id: int | None = None,
    now: datetime | None = None,
) -> str | None:
    """Put one event in the outbox, in the caller's transaction; returns its event id, or None when no
    subscription wants it or an event with the same ``dedupe_key`` is already stored.

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import create_engine, upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> engine = create_engine(url)
    >>> with engine.begin() as conn:  # nobody subscribed: nothing is stored
    ...     enqueue(conn, "model.promoted", {"version": "2"}) is None
    True
    """
    event = NewEvent(check_kind(kind), payload, lead_id, ordering_key, dedupe_key, subscription_id)
    done = enqueue_many(conn, [event], now=now)
    return done.event_ids.get(0)


def enqueue_many(conn: Connection, events: Sequence[NewEvent], *, now: datetime | None = None) -> Enqueued:
    """Put ``events`` in the outbox, in the caller's transaction, with one delivery per subscription wanting
    each; events nobody wants, and events whose ``dedupe_key`` is already stored, are skipped."""
    now = now or _now()
    wanted = subscribers(conn, sorted({e.kind for e in events if e.subscription_id is None}))
    rows, targets = [], {}
    for position, event in enumerate(events):
        check_kind(event.kind)
        subs = [event.subscription_id] if event.subscription_id is not None else wanted.get(event.kind, [])
        if not subs:
            continue
        event_id = uuid.uuid4().hex
        targets[event_id] = (position, subs, event.key())
        rows.append(
            {
                "event_id": event_id,
                "kind": event.kind,
                "lead_id": event.lead_id,
                "ordering_key": event.key(),
                "payload": dict(event.payload),
                "dedupe_key": event.dedupe_key,
                "created_at": now,
            }
        )
    done = Enqueued()
    if not rows:
        return done
    t = webhook_outbox_table
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t)
    stored = conn.execute(insert.on_conflict_do_nothing().returning(t.c.id, t.c.event_id), rows).all()
    deliveries = []
    for outbox_id, event_id in stored:
        position, subs, key = targets[event_id]
        done.event_ids[position] = event_id
        for sub_id in subs:
            deliveries.append(
                {
                    "outbox_id": outbox_id,
                    "subscription_id": sub_id,
                    "ordering_key": key,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if deliveries:
        conn.execute(sa.insert(webhook_deliveries_table), deliveries)
    done.events, done.deliveries = len(stored), len(deliveries)
    return done


def claim(conn: Connection, limit: int, *, worker: str, now: datetime, lease_until: datetime) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``worker`` until ``lease_until``, counting the attempt.

    Due: pending, ``next_attempt_at`` passed, not leased (or the lease ran out), and no earlier delivery of the
    same ``ordering_key`` still pending for the same subscription. On PostgreSQL the rows are locked with
    ``SKIP LOCKED``, so workers in several processes never take the same row; on SQLite the write transaction
    (``BEGIN IMMEDIATE``) does that.
    """
    d = webhook_deliveries_table
    earlier = d.alias("earlier")
    blocked = (
        sa.select(sa.literal(1))
        .where(
            sa.text(f"earlier.{PENDING_DELIVERY}"),
            earlier.c.subscription_id == d.c.subscription_id,
            earlier.c.ordering_key == d.c.ordering_key,
            earlier.c.id < d.c.id,
        )
        .exists()
    )
    due = (
        sa.select(d.c.id)
        .where(
            sa.text(f"webhook_deliveries.{PENDING_DELIVERY}"),
            d.c.next_attempt_at <= now,
            sa.or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
            ~blocked,
        )
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=d)
    ids = [int(i) for i in conn.execute(due).scalars()]
    if not ids:
        return []
    conn.execute(
        sa.update(d)
        .where(d.c.id.in_(ids))
        .values(claimed_by=worker, lease_until=lease_until, attempts=d.c.attempts + 1, last_attempt_at=now)
    )
    o, s = webhook_outbox_table, webhook_subscriptions_table
    stmt = (
        sa.select(
            d.c.id,
            d.c.attempts,
            s.c.id,
            s.c.url,
            s.c.secret,
            o.c.id,
            o.c.event_id,
            o.c.kind,
            o.c.lead_id,
            o.c.payload,
            o.c.created_at,
        )
        .join(o, o.c.id == d.c.outbox_id)
        .join(s, s.c.id == d.c.subscription_id)
        .where(d.c.id.in_(ids))
        .order_by(d.c.id)
    )
    return [Claimed(*row) for row in conn.execute(stmt)]


def mark(conn: Connection, outcomes: Sequence[Outcome], *, worker: str, now: datetime) -> int:
    """Record the outcomes of ``worker``'s attempts; returns how many rows it still held (a row whose lease ran
    out and was claimed by another worker is left to that one)."""
    d = webhook_deliveries_table
    mine = sa.and_(
        d.c.id == sa.bindparam("b_id"), d.c.claimed_by == worker, sa.text(f"webhook_deliveries.{PENDING_DELIVERY}")
    )
    groups: dict[str, list[dict[str, Any]]] = {DELIVERED: [], PENDING: [], DEAD: []}
    for out in outcomes:
        status = DELIVERED if out.delivered else (PENDING if out.retry_at is not None else DEAD)
        groups[status].append(
            {
                "b_id": out.delivery_id,
                "b_code": out.response_code,
                "b_error": None if out.error is None else out.error[:1000],
                "b_next": out.retry_at or now,
            }
        )
    marked = 0
    for status, rows in groups.items():
        if not rows:
            continue
        values: dict[str, Any] = {
            "status": status,
            "claimed_by": None,
            "lease_until": None,
            "response_code": sa.bindparam("b_code"),
            "last_error": sa.bindparam("b_error"),
        }
        if status == DELIVERED:
            values["delivered_at"] = now
        if status == PENDING:
            values["next_attempt_at"] = sa.bindparam("b_next")
        marked += conn.execute(sa.update(d).where(mine).values(**values), rows).rowcount
    return marked


def redeliver(
    conn: Connection, subscription_id: int, *, delivery_ids: Sequence[int] | None = None, now: datetime | None = None
) -> int:
    """Queue again a subscription's dead deliveries, or the finished ones named by ``delivery_ids`` (delivered
    ones too: a receiver that lost them); each starts over with no attempts. Returns how many were queued."""
    d = webhook_deliveries_table
    where = [d.c.subscription_id == subscription_id]
    if delivery_ids is None:
        where.append(d.c.status == DEAD)
    else:
        where += [d.c.id.in_([int(i) for i in delivery_ids]), d.c.status != PENDING]
    stmt = (
        sa.update(d)
        .where(*where)
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=now or _now(),
            claimed_by=None,
            lease_until=None,
            delivered_at=None,
        )
    )
    return conn.execute(stmt).rowcount


#: The columns of a delivery log row, as the API shows them.
LOG_COLUMNS: tuple[str, ...] = (
    "delivery_id",
    "event_id",
    "kind",
    "lead_id",
    "status",
    "attempts",
    "response_code",
    "last_error",
    "created_at",
    "last_attempt_at",
    "next_attempt_at",
    "delivered_at",
)


def deliveries(
    conn: Connection, subscription_id: int, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """A subscription's delivery log, newest first (optionally of one status)."""
    d, o = webhook_deliveries_table, webhook_outbox_table
    stmt = (
        sa.select(
            d.c.id,
            o.c.event_id,
            o.c.kind,
            o.c.lead_id,
            d.c.status,
            d.c.attempts,
            d.c.response_code,
            d.c.last_error,
            d.c.created_at,
            d.c.last_attempt_at,
            d.c.next_attempt_at,
            d.c.delivered_at,
        )
        .join(o, o.c.id == d.c.outbox_id)
        .where(d.c.subscription_id == subscription_id)
        .order_by(d.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if status is not None:
        stmt = stmt.where(d.c.status == status)
    rows = [dict(zip(LOG_COLUMNS, row, strict=True)) for row in conn.execute(stmt)]
    for row in rows:
        if row["status"] != PENDING:
            row["next_attempt_at"] = None
    return rows


def counts(conn: Connection, subscription_id: int | None = None) -> dict[str, int]:
    """Deliveries by status (of one subscription, or of all)."""
    d = webhook_deliveries_table
    stmt = sa.select(d.c.status, sa.func.count()).group_by(d.c.status)
    if subscription_id is not None:
        stmt = stmt.where(d.c.subscription_id == subscription_id)
    found = {status: 0 for status in STATUSES}
    found.update({status: int(n) for status, n in conn.execute(stmt)})
    return found


def prune(conn: Connection, before: datetime) -> int:
    """Forget deliveries finished before ``before``, and the events left with no delivery; returns the number
    of deliveries forgotten."""
    d, o = webhook_deliveries_table, webhook_outbox_table
    finished = sa.func.coalesce(d.c.delivered_at, d.c.last_attempt_at, d.c.created_at)
    gone = conn.execute(sa.delete(d).where(d.c.status != PENDING, finished < before)).rowcount
    orphan = ~sa.select(sa.literal(1)).where(d.c.outbox_id == o.c.id).exists()
    conn.execute(sa.delete(o).where(o.c.created_at < before, orphan))
    return gone


def last_event(conn: Connection, kind: str) -> tuple[int, dict[str, Any]] | None:
    """The newest stored event of ``kind``: its sequence number and payload (None if there is none)."""
    o = webhook_outbox_table
    row = conn.execute(sa.select(o.c.id, o.c.payload).where(o.c.kind == kind).order_by(o.c.id.desc()).limit(1)).first()
    return None if row is None else (int(row[0]), dict(row[1]))
