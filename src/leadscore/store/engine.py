"""Connecting to the store: SQLite (a file, WAL mode) or PostgreSQL (psycopg 3).

SQLite is tuned for a service with concurrent readers and writers: write-ahead logging (readers never block the
writer), foreign keys enforced, a busy timeout instead of immediate "database is locked" errors, and write
transactions that take the write lock up front (``BEGIN IMMEDIATE``) so that a transaction that read first never
fails to upgrade to a writer. PostgreSQL needs none of this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import tenacity
from sqlalchemy.engine import Connection, Engine, make_url

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option marking a connection whose transactions will write (SQLite: BEGIN IMMEDIATE).
_WRITE_OPTION = "leadscore_write"
# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock detected.
_RETRY_SQLSTATES = {"40001", "40P01"}


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver (``postgresql://`` or ``postgres://``).

    Examples
    --------
    >>> normalize_url("postgres://u@localhost/db")
    'postgresql+psycopg://u@localhost/db'
    >>> normalize_url("sqlite:///data/leadscore.db")
    'sqlite:///data/leadscore.db'
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings the store relies on.

    For a SQLite file the parent folder is created if needed.

    Examples
    --------
    >>> import tempfile
    >>> engine = create_engine(f"sqlite:///{tempfile.mkdtemp()}/x.db")
    >>> with engine.connect() as conn:
    ...     conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    'wal'
    """
    parsed = make_url(normalize_url(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, **kwargs)
        _tune_sqlite(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    raise ValueError(f"unsupported database {parsed.render_as_string(hide_password=True)!r}: use sqlite or postgresql")


#: SQLite's page cache per connection, in KiB.
SQLITE_CACHE_KB = 16_384


def _tune_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see `_on_begin`), instead of pysqlite's implicit transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against a crash of the process (what SIGKILL does); only a power loss can lose
        # the last transactions, and never corrupts the database.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # A 16 MB page cache per connection (the default is 2 MB) keeps the hot index pages in memory, and
        # staging tables live in memory. Not more: the cache is per connection and a service holds a pool of them
        # (the keeper's, each request thread's), each filling its cache on a scan of a large index; at 64 MB a 5M-
        # event store took the service past 700 MB. Pages beyond it come from the OS's file cache.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that will write; committed on success, rolled back on error.

    On SQLite the write lock is taken at BEGIN, so concurrent writers queue (up to the busy timeout) instead
    of failing half-way.

    Examples
    --------
    >>> import tempfile
    >>> engine = create_engine(f"sqlite:///{tempfile.mkdtemp()}/x.db")
    >>> with write_transaction(engine) as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    """
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


def is_transient(error: BaseException) -> bool:
    """Whether a database error is worth retrying: a lock wait that timed out, a deadlock, a serialization
    failure or a dropped connection."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    if getattr(orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    message = str(orig).lower()
    return "database is locked" in message or "database is busy" in message


def run_in_write_transaction(
    engine: Engine, work: Callable[[Connection], T], *, attempts: int = 4, backoff_s: float = 0.05
) -> T:
    """Run ``work(conn)`` in a write transaction, retrying the whole transaction on transient errors.

    ``work`` must be safe to repeat: everything it did in a failed attempt was rolled back.

    Examples
    --------
    >>> import tempfile
    >>> engine = create_engine(f"sqlite:///{tempfile.mkdtemp()}/x.db")
    >>> run_in_write_transaction(engine, lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
    1
    """
    # tenacity: up to `attempts` tries on transient errors, sleeping backoff_s, 2*backoff_s, ... in between.
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=backoff_s, exp_base=2, min=0),
        reraise=True,
    )
    for attempt in retrying:
        with attempt, write_transaction(engine) as conn:
            return work(conn)
    raise AssertionError("unreachable")  # pragma: no cover
