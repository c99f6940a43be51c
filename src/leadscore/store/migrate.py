"""Schema migrations, run programmatically: ``upgrade_database(url)`` is ``alembic upgrade head``.

The service calls it at start-up and ``leadscore db upgrade`` calls it from the shell, so an existing database
is upgraded in place and a new one is created. Concurrent callers are safe: on PostgreSQL an advisory lock, on
SQLite the write lock, makes the second one wait and then find nothing to do.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from leadscore.store.engine import create_engine, write_transaction

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Alembic keeps the running migration context in module globals: one upgrade at a time per process.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config() -> Config:
    """An Alembic configuration pointing at the store's migrations (no ``alembic.ini`` needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest migration's revision id.

    Examples
    --------
    >>> head_revision()
    '0008'
    """
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade_database(url: str, revision: str = "head") -> str | None:
    """Create or upgrade the database at ``url`` to ``revision`` (default: the newest); return the revision.

    Examples
    --------
    >>> import tempfile
    >>> upgrade_database(f"sqlite:///{tempfile.mkdtemp()}/leadscore.db")
    '0008'
    """
    cfg = alembic_config()
    engine = create_engine(url)
    try:
        with _ALEMBIC_LOCK, write_transaction(engine) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return current_revision_of(engine)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None for a database without a schema."""
    engine = create_engine(url)
    try:
        return current_revision_of(engine)
    finally:
        engine.dispose()


def current_revision_of(engine: Engine) -> str | None:
    """The revision of the database behind ``engine``."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
