"""The funnel's read model: each lead's stays in the stages (entered, left) and its first closing, filled from
the stored events.

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COHORT_INDEX = ("created_us", "lead_id", "stage_rank", "entered_us", "left_us", "amount")


def upgrade() -> None:
    op.create_table(
        "lead_stage_stays",
        sa.Column("id", BIGINT_KEY, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("stage_rank", sa.SmallInteger(), nullable=False),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.Column("left_us", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.lead_id"], name="fk_lead_stage_stays_lead_id_leads"),
        sa.PrimaryKeyConstraint("id", name="pk_lead_stage_stays"),
    )
    op.create_index("ix_lead_stage_stays_lead_id", "lead_stage_stays", ["lead_id"])
    op.create_index("ix_lead_stage_stays_cohort", "lead_stage_stays", list(COHORT_INDEX))
    # Filled by the statement ingestion keeps it with (an empty store costs nothing).
    from leadscore.store.read_model import recompute_stays

    recompute_stays(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_lead_stage_stays_cohort", table_name="lead_stage_stays")
    op.drop_index("ix_lead_stage_stays_lead_id", table_name="lead_stage_stays")
    op.drop_table("lead_stage_stays")
