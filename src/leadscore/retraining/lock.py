"""A lease in the store, so that two services on one store never retrain at once nor twice for one slot.

A lease is a row of ``job_leases`` (migration 0009). Taking it is one conditional ``UPDATE``: it succeeds only
when nobody holds the row or the holder's lease has expired, and the slot asked for is not the one already done.
A single UPDATE is atomic on both databases: SQLite runs one writer at a time, and on PostgreSQL a second
UPDATE of the same row waits for the first to commit and then re-checks its WHERE against the new row (READ
COMMITTED), so exactly one of two services gets ``rowcount == 1``. While the job runs, a heartbeat thread
renews the lease (every third of its time to live); a crashed holder stops renewing, and its lease expires.
Finishing records the slot as done in the same UPDATE that frees the row.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadscore.store.engine import run_in_write_transaction
from leadscore.store.tables import job_leases_table as leases

log = logging.getLogger("leadscore.retraining")

DEFAULT_TTL_SECONDS = 600.0


def holder_name() -> str:
    """Who holds a lease: host, process and a random part (two services on one host differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _now() -> datetime:
    return datetime.now(UTC)


class Lease:
    """A held lease: renew it while working, then :meth:`finish` (slot done) or :meth:`release` (not done).

    Use :func:`acquire` to get one. As a context manager it renews itself in a background thread and releases
    on exit unless finished.
    """

    def __init__(self, engine: Engine, name: str, holder: str, slot: str, ttl_s: float):
        self.engine, self.name, self.holder, self.slot, self.ttl_s = engine, name, holder, slot, ttl_s
        self.lost = False
        self._closed = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def _mine(self):
        return sa.and_(leases.c.name == self.name, leases.c.holder == self.holder)

    def renew(self) -> bool:
        """Push the expiry ``ttl_s`` ahead; False (and :attr:`lost`) when another holder took it meanwhile."""
        expires = _now() + timedelta(seconds=self.ttl_s)
        statement = sa.update(leases).where(self._mine()).values(expires_at=expires)
        rows = run_in_write_transaction(self.engine, lambda conn: conn.execute(statement).rowcount)
        if rows != 1:
            self.lost = True
        return not self.lost

    def still_held(self) -> bool:
        """Whether this holder still holds the lease, unexpired (checked before acting on the job's result)."""
        if self.lost or self._closed:
            return False
        query = sa.select(leases.c.expires_at).where(self._mine())
        with self.engine.connect() as conn:
            expires = conn.execute(query).scalar()
        held = expires is not None and expires > _now()
        self.lost = not held
        return held

    def finish(self, outcome: dict[str, Any] | None = None, *, done_at: datetime | None = None) -> bool:
        """Free the lease and record its slot as done (at ``done_at`` on the schedule's clock, default now, with
        ``outcome``); False when it had been lost."""
        values = dict(holder=None, expires_at=None, done_slot=self.slot, done_at=done_at or _now(), outcome=outcome)
        return self._close(values)

    def release(self) -> bool:
        """Free the lease without marking the slot done (the job failed: the next tick may try again)."""
        return self._close(dict(holder=None, expires_at=None))

    def _close(self, values: dict[str, Any]) -> bool:
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=5)
        if self._closed:
            return not self.lost
        self._closed = True
        statement = sa.update(leases).where(self._mine()).values(**values)
        rows = run_in_write_transaction(self.engine, lambda conn: conn.execute(statement).rowcount)
        return rows == 1

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.renew():
                    log.warning("lease %r was taken over by another holder", self.name)
                    return
            except Exception:  # noqa: BLE001 - a failed renewal is retried at the next beat; expiry is the limit
                log.exception("could not renew lease %r", self.name)

    def __enter__(self) -> Lease:
        self._heartbeat = threading.Thread(target=self._beat, name=f"lease-{self.name}", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            self.release()


def acquire(
    engine: Engine,
    name: str,
    slot: str,
    *,
    holder: str | None = None,
    ttl_s: float = DEFAULT_TTL_SECONDS,
    now: datetime | None = None,
    redo_after: timedelta | None = None,
) -> Lease | None:
    """Take the lease ``name`` for schedule slot ``slot``; None when someone holds it or the slot is done.

    ``redo_after`` takes it for a slot already done too, when that was at least this long before ``now`` (the
    schedule's clock, default the wall clock): a drift alert's retraining, which the cool-down keeps from running
    twice. The lease's expiry always runs on the wall clock (it is about processes, not the schedule).

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import create_engine, upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/s.db"; _ = upgrade_database(url); engine = create_engine(url)
    >>> first = acquire(engine, "retrain", "2026-12-01")
    >>> acquire(engine, "retrain", "2026-12-01") is None  # held
    True
    >>> first.finish({"promoted": False})
    True
    >>> acquire(engine, "retrain", "2026-12-01") is None  # that slot is done
    True
    >>> acquire(engine, "retrain", "2026-12-16") is not None  # the next one is not
    True
    """
    holder = holder or holder_name()
    wall = _now()
    free = sa.or_(leases.c.holder.is_(None), leases.c.expires_at.is_(None), leases.c.expires_at <= wall)
    not_done = sa.or_(leases.c.done_slot.is_(None), leases.c.done_slot != slot)
    if redo_after is not None:
        not_done = sa.or_(not_done, leases.c.done_at.is_(None), leases.c.done_at <= (now or wall) - redo_after)
    take = (
        sa.update(leases)
        .where(leases.c.name == name, free, not_done)
        .values(holder=holder, acquired_at=wall, expires_at=wall + timedelta(seconds=ttl_s))
    )

    def work(conn) -> int:
        exists = conn.execute(sa.select(leases.c.name).where(leases.c.name == name)).first()
        if exists is None:
            # First use: create the free row. Two creators race on the primary key; the loser's insert fails,
            # is rolled back with its transaction and retried (then the row exists and only the UPDATE runs).
            conn.execute(sa.insert(leases).values(name=name))
        return conn.execute(take).rowcount

    try:
        taken = run_in_write_transaction(engine, work)
    except sa.exc.IntegrityError:
        taken = run_in_write_transaction(engine, lambda conn: conn.execute(take).rowcount)
    return Lease(engine, name, holder, slot, ttl_s) if taken == 1 else None


def last_done(engine: Engine, name: str) -> dict[str, Any] | None:
    """The lease's last completed slot, when, and the outcome recorded; None before the first."""
    query = sa.select(leases.c.done_slot, leases.c.done_at, leases.c.outcome, leases.c.holder, leases.c.expires_at)
    with engine.connect() as conn:
        row = conn.execute(query.where(leases.c.name == name)).mappings().first()
    return None if row is None else dict(row)
