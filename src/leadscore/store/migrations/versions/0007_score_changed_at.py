"""When each kept score's probability or grade last changed, for writing back only what changed; and each kept
lead's own cadence, for the follow-up flag with store-wide stage gaps.

Rows already scored are dated by their last computation (the latest their score can have changed), so a CRM
asking for changes since an earlier time gets them rather than missing them; and they are queued for one re-score
(saying so), since their own cadence was not kept: until then the keeper's store-wide follow-up pass would take
them as leads without one.

Revision ID: 0007
Revises: 0006
Create Date: 2025-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("lead_scores", sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("lead_scores", sa.Column("own_cadence_days", sa.Float(), nullable=True))
    op.create_index("ix_lead_scores_changed_at", "lead_scores", ["changed_at"])
    op.execute("UPDATE lead_scores SET changed_at = computed_at WHERE probability IS NOT NULL")
    op.execute(
        "UPDATE lead_scores SET stale = true, changes = changes + 1, retry_at = NULL, "
        "stale_reason = 're-scoring once after an upgrade of the store' WHERE probability IS NOT NULL AND NOT stale"
    )


def downgrade() -> None:
    op.drop_index("ix_lead_scores_changed_at", table_name="lead_scores")
    with op.batch_alter_table("lead_scores") as batch:
        batch.drop_column("own_cadence_days")
        batch.drop_column("changed_at")
