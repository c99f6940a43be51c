"""The analytics read model (events per day, type and rep; each lead's first touch) and the indexes the
analytics queries use: leads by creation time, closings by time, and the funnel's events (stage changes and
closings) per lead.

The new tables are filled from the stored events, so an existing store answers the same after the upgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CLOSING = sa.text("type IN ('won', 'lost')")
FUNNEL = sa.text("type IN ('stage_changed', 'won', 'lost')")


def upgrade() -> None:
    op.create_index("ix_leads_created_at", "leads", ["created_at"])
    op.create_index(
        "ix_events_closing_at",
        "events",
        ["at", "lead_id", "event_id", "amount", "rep_id"],
        sqlite_where=CLOSING,
        postgresql_where=CLOSING,
    )
    op.create_index(
        "ix_events_funnel",
        "events",
        ["lead_id", "at", "event_id", "type", "stage", "amount"],
        sqlite_where=FUNNEL,
        postgresql_where=FUNNEL,
    )
    op.create_table(
        "event_days",
        sa.Column("id", BIGINT_KEY, autoincrement=True, nullable=False),
        sa.Column("day", UTC_TIMESTAMP, nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("rep_id", sa.String(), nullable=True),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("cold_calls", sa.BigInteger(), nullable=False),
        sa.Column("timed_calls", sa.BigInteger(), nullable=False),
        sa.Column("call_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_days"),
    )
    op.create_index("ix_event_days_day", "event_days", ["day"])
    op.create_table(
        "lead_first_touch",
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.lead_id"], name="fk_lead_first_touch_lead_id_leads"),
        sa.PrimaryKeyConstraint("lead_id", name="pk_lead_first_touch"),
    )
    # Filled by the same statements ingestion keeps them with (an empty store costs nothing).
    from leadscore.store.read_model import rebuild_activity

    rebuild_activity(op.get_bind())


def downgrade() -> None:
    op.drop_table("lead_first_touch")
    op.drop_index("ix_event_days_day", table_name="event_days")
    op.drop_table("event_days")
    op.drop_index("ix_events_funnel", table_name="events")
    op.drop_index("ix_events_closing_at", table_name="events")
    op.drop_index("ix_leads_created_at", table_name="leads")
