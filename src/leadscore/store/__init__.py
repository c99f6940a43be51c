"""The leadscore store: SQLite by default, PostgreSQL when a URL says so.

- :mod:`~leadscore.store.tables`: the SQLAlchemy models (leads, events, goals, expenses, score history);
- :mod:`~leadscore.store.engine`: connecting (SQLite in WAL mode, PostgreSQL through psycopg 3);
- :mod:`~leadscore.store.migrate`: Alembic migrations run programmatically (``upgrade_database``);
- :mod:`~leadscore.store.repository`: every read and write, in data-contract frames.
"""

from leadscore.store.engine import create_engine
from leadscore.store.errors import EventConflict, EventConflictError, UnknownLeadError
from leadscore.store.migrate import current_revision, head_revision, upgrade_database
from leadscore.store.repository import IngestResult, Repository

__all__ = [
    "EventConflict",
    "EventConflictError",
    "IngestResult",
    "Repository",
    "UnknownLeadError",
    "create_engine",
    "current_revision",
    "head_revision",
    "upgrade_database",
]
