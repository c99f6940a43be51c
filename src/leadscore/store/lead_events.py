"""What subscribers hear when the keeper rewrites a lead's kept score: a grade crossed, follow-up needed.

:func:`before` reads the rows about to be replaced and :func:`enqueue_changes` compares them with the new scores,
both inside the keeper's write transaction (:func:`leadscore.store.scores.write_scores`), so an event exists if
and only if the score it reports was stored. The rules:

- ``lead.grade_changed``: the new grade differs from the grade of the kept row it replaces. A lead's first score
  is not a crossing (there was no grade to leave), so a new store, or the upgrade that creates the kept scores,
  does not announce every lead;
- ``lead.needs_follow_up``: the follow-up flag is on now and was off in the row it replaces (again, not on a
  lead's first score).

When no active subscription wants either kind, nothing is read: the keeper pays one small query per batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.store import outbox
from leadscore.store.tables import lead_scores_table

GRADE_CHANGED = "lead.grade_changed"
NEEDS_FOLLOW_UP = "lead.needs_follow_up"
_KINDS = (GRADE_CHANGED, NEEDS_FOLLOW_UP)
_BEFORE = ("lead_id", "grade", "probability", "model_version", "needs_follow_up")


def before(conn: Connection, lead_ids: Sequence[str]) -> dict[str, dict[str, Any]] | None:
    """The kept rows of ``lead_ids`` as they are before a write (scored ones only), or None when nobody is
    subscribed to the leads' events (then nothing needs comparing)."""
    if not lead_ids or not outbox.subscribers(conn, _KINDS):
        return None
    t = lead_scores_table
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(lead_ids), 1000):
        stmt = sa.select(*(t.c[c] for c in _BEFORE)).where(
            t.c.lead_id.in_(list(lead_ids[start : start + 1000])), t.c.probability.is_not(None)
        )
        for row in conn.execute(stmt):
            found[row[0]] = dict(zip(_BEFORE, row, strict=True))
    return found


def enqueue_changes(
    conn: Connection, previous: Mapping[str, Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], *, now: datetime
) -> int:
    """Enqueue the events of the new score ``rows`` (``b_<column>`` parameters, as
    :func:`leadscore.store.scores.write_scores` binds them) against the ``previous`` rows; returns how many."""
    events = []
    for row in rows:
        old = previous.get(row["b_lead_id"])
        if old is None:
            continue
        events += _events(old, row)
    return outbox.enqueue_many(conn, events, now=now).events if events else 0


def _events(old: Mapping[str, Any], row: Mapping[str, Any]) -> list[outbox.NewEvent]:
    lead = row["b_lead_id"]
    found = []
    if row["b_grade"] is not None and row["b_grade"] != old["grade"]:
        found.append(
            outbox.NewEvent(
                GRADE_CHANGED,
                {
                    "lead_id": lead,
                    "from_grade": old["grade"],
                    "to_grade": row["b_grade"],
                    "direction": "up" if row["b_probability"] > old["probability"] else "down",
                    "probability": row["b_probability"],
                    "previous_probability": old["probability"],
                    "model_version": row["b_model_version"],
                    "previous_model_version": old["model_version"],
                    "cutoff": _iso(row["b_cutoff"]),
                    "owner_id": row["b_owner_id"],
                    "stage": row["b_stage"],
                },
                lead_id=lead,
            )
        )
    if row["b_needs_follow_up"] and not old["needs_follow_up"]:
        found.append(
            outbox.NewEvent(
                NEEDS_FOLLOW_UP,
                {
                    "lead_id": lead,
                    "owner_id": row["b_owner_id"],
                    "days_since_last_touch": row["b_days_since_last_touch"],
                    "last_interaction": _iso(row["b_last_interaction"]),
                    "next_scheduled": _iso(row["b_next_scheduled"]),
                    "cadence_days": row["b_cadence_days"],
                    "probability": row["b_probability"],
                    "grade": row["b_grade"],
                    "cutoff": _iso(row["b_cutoff"]),
                },
                lead_id=lead,
            )
        )
    return found


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
