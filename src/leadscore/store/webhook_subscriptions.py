"""Webhook subscriptions in the store (table ``webhook_subscriptions``): created, listed, read, deleted.

Validation (the URL's target, the kinds, the secret) is the caller's: :mod:`leadscore.webhooks.subscriptions`.
The secret is stored as given, since every payload is signed with it; reads leave it out unless asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.store.tables import webhook_deliveries_table, webhook_subscriptions_table

#: What a read returns (without the secret).
COLUMNS: tuple[str, ...] = ("id", "url", "kinds", "description", "active", "created_at")


def create(
    conn: Connection, *, url: str, secret: str, kinds: Sequence[str], description: str | None, now: datetime
) -> dict[str, Any]:
    """Store a subscription; returns it as :func:`get` does."""
    t = webhook_subscriptions_table
    stmt = sa.insert(t).values(
        url=url, secret=secret, kinds=list(kinds), description=description, active=True, created_at=now
    )
    new_id = conn.execute(stmt.returning(t.c.id)).scalar_one()
    found = get(conn, int(new_id))
    assert found is not None
    return found


def get(conn: Connection, subscription_id: int) -> dict[str, Any] | None:
    """One subscription (no secret), or None."""
    t = webhook_subscriptions_table
    row = conn.execute(sa.select(*(t.c[c] for c in COLUMNS)).where(t.c.id == subscription_id)).first()
    return None if row is None else _row(row)


def list_all(conn: Connection) -> list[dict[str, Any]]:
    """Every subscription, oldest first (no secrets)."""
    t = webhook_subscriptions_table
    return [_row(row) for row in conn.execute(sa.select(*(t.c[c] for c in COLUMNS)).order_by(t.c.id))]


def delete(conn: Connection, subscription_id: int) -> bool:
    """Delete a subscription and its deliveries (pending ones are never sent); False if there was none."""
    conn.execute(
        sa.delete(webhook_deliveries_table).where(webhook_deliveries_table.c.subscription_id == subscription_id)
    )
    t = webhook_subscriptions_table
    return conn.execute(sa.delete(t).where(t.c.id == subscription_id)).rowcount > 0


def _row(row: Any) -> dict[str, Any]:
    out = dict(zip(COLUMNS, row, strict=True))
    out["id"] = int(out["id"])
    out["kinds"] = list(out["kinds"] or [])
    out["active"] = bool(out["active"])
    return out
