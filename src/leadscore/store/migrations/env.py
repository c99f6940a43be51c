"""Alembic environment for the leadscore store.

Run through :func:`leadscore.store.migrate.upgrade_database` (or ``leadscore db upgrade``), which hands over a
connection already in a write transaction; run by the ``alembic`` command, it connects to
``sqlalchemy.url`` or, failing that, to the configured ``LEADSCORE_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from leadscore.store.engine import create_engine, write_transaction
from leadscore.store.tables import Base

# Any constant will do: it only has to be the same for every process migrating the same database.
MIGRATION_LOCK_KEY = 0x1EAD5C0

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from leadscore.settings import Settings

    return Settings().resolved_database_url()


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Two processes starting together must not both migrate: the second waits, then finds nothing to do.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url())
    try:
        # SQLite: BEGIN IMMEDIATE, so a second migrating process waits for the first one.
        with write_transaction(engine) as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
