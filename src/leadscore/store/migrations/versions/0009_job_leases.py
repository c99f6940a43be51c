"""Leases on jobs only one service may run at a time (the scheduled retraining), with their last schedule slot.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=True),
        sa.Column("acquired_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("done_slot", sa.String(), nullable=True),
        sa.Column("done_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("outcome", JSON, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_job_leases"),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
