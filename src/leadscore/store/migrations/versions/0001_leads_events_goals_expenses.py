"""Leads, events, goals and expenses.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("owner_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("lead_id", name="pk_leads"),
    )
    op.create_index("ix_leads_owner_id", "leads", ["owner_id"])
    op.create_index("ix_leads_source", "leads", ["source"])

    op.create_table(
        "events",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("rep_id", sa.String(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("scheduled_for", UTC_TIMESTAMP, nullable=True),
        sa.Column("stage", sa.String(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("subtype", sa.String(), nullable=True),
        sa.Column("ingested_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.lead_id"], name="fk_events_lead_id_leads"),
        sa.PrimaryKeyConstraint("event_id", name="pk_events"),
    )
    op.create_index("ix_events_lead_id_at", "events", ["lead_id", "at"])
    op.create_index("ix_events_at", "events", ["at"])

    op.create_table(
        "goals",
        sa.Column("id", BIGINT_KEY, autoincrement=True, nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("start", UTC_TIMESTAMP, nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_goals"),
        sa.UniqueConstraint("metric", "period", "scope", "start", name="uq_goals_metric_period_scope_start"),
    )

    op.create_table(
        "expenses",
        sa.Column("id", BIGINT_KEY, autoincrement=True, nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("rep_id", sa.String(), nullable=True),
        sa.Column("campaign", sa.String(), nullable=True),
        sa.Column("category", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_expenses"),
    )
    op.create_index("ix_expenses_at", "expenses", ["at"])


def downgrade() -> None:
    op.drop_index("ix_expenses_at", table_name="expenses")
    op.drop_table("expenses")
    op.drop_table("goals")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_index("ix_events_lead_id_at", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_leads_source", table_name="leads")
    op.drop_index("ix_leads_owner_id", table_name="leads")
    op.drop_table("leads")
