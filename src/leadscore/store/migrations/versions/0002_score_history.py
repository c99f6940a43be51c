"""Score history: every score given to a stored lead, for trends.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "score_history",
        sa.Column("id", BIGINT_KEY, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("scored_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("cutoff", UTC_TIMESTAMP, nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(), nullable=True),
        sa.Column("percentile", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(), nullable=True),
        sa.Column("reasons", JSON, nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.lead_id"], name="fk_score_history_lead_id_leads"),
        sa.PrimaryKeyConstraint("id", name="pk_score_history"),
    )
    op.create_index("ix_score_history_lead_id_scored_at", "score_history", ["lead_id", "scored_at"])


def downgrade() -> None:
    op.drop_index("ix_score_history_lead_id_scored_at", table_name="score_history")
    op.drop_table("score_history")
