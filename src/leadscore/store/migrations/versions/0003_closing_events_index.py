"""Index the closing (won/lost) events of each lead, so "which leads are open at t" is an index probe per lead.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLOSING = sa.text("type IN ('won', 'lost')")


def upgrade() -> None:
    op.create_index("ix_events_closing", "events", ["lead_id", "at"], sqlite_where=CLOSING, postgresql_where=CLOSING)


def downgrade() -> None:
    op.drop_index("ix_events_closing", table_name="events")
