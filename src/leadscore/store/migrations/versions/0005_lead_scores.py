"""The latest score of each open lead, kept fresh as events arrive, with indexes for the prioritised list.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STALE = sa.text("stale")

INDEXES = {
    "ix_lead_scores_probability": ["probability", "lead_id"],
    "ix_lead_scores_expected_value_order": ["expected_value_order", "lead_id"],
    "ix_lead_scores_owner_id": ["owner_id", "probability"],
    "ix_lead_scores_stage": ["stage", "probability"],
    "ix_lead_scores_grade": ["grade", "probability"],
    "ix_lead_scores_source": ["source", "probability"],
    "ix_lead_scores_needs_follow_up": ["needs_follow_up", "probability"],
    "ix_lead_scores_cutoff": ["cutoff"],
}


def upgrade() -> None:
    op.create_table(
        "lead_scores",
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=True),
        sa.Column("cutoff", UTC_TIMESTAMP, nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("grade", sa.String(), nullable=True),
        sa.Column("percentile", sa.Float(), nullable=True),
        sa.Column("expected_value", sa.Float(), nullable=True),
        sa.Column("expected_value_order", sa.Float(), nullable=True),
        sa.Column("provisional", sa.Boolean(), nullable=True),
        sa.Column("reasons", JSON, nullable=True),
        sa.Column("owner_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("stage", sa.String(), nullable=True),
        sa.Column("deal_amount", sa.Float(), nullable=True),
        sa.Column("relationship_start", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_interaction", UTC_TIMESTAMP, nullable=True),
        sa.Column("next_scheduled", UTC_TIMESTAMP, nullable=True),
        sa.Column("days_since_last_touch", sa.Float(), nullable=True),
        sa.Column("needs_follow_up", sa.Boolean(), nullable=True),
        sa.Column("cadence_days", sa.Float(), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("stale_reason", sa.String(), nullable=True),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("retry_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("computed_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.lead_id"], name="fk_lead_scores_lead_id_leads"),
        sa.PrimaryKeyConstraint("lead_id", name="pk_lead_scores"),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "lead_scores", columns)
    op.create_index("ix_lead_scores_stale", "lead_scores", ["lead_id"], sqlite_where=STALE, postgresql_where=STALE)
    # Every lead already stored is queued: the service scores them once after the upgrade.
    op.execute(
        "INSERT INTO lead_scores (lead_id, stale, stale_reason, changes) "
        "SELECT lead_id, true, 'not scored yet', 0 FROM leads"
    )


def downgrade() -> None:
    op.drop_index("ix_lead_scores_stale", table_name="lead_scores")
    for name in INDEXES:
        op.drop_index(name, table_name="lead_scores")
    op.drop_table("lead_scores")
