"""Writing batches of leads and events: staged, checked and moved into place by the database.

Both functions run inside the caller's write transaction and raise (rolling it back) on bad input. Rows are
moved in key order, so concurrent overlapping batches take their row locks in the same order and cannot
deadlock on PostgreSQL; on SQLite writers queue on the write lock.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.contracts import EVENTS, LEADS, ContractError, Problem
from leadscore.store.bulk import Bulk, attributes_json, column_values, rows_of
from leadscore.store.errors import EventConflict, EventConflictError
from leadscore.store.read_model import (
    advance_first_touches,
    reassigned_days,
    recompute_stays,
    recount_days,
    staged_event_days,
    staged_funnel_leads,
    staged_leads,
)
from leadscore.store.tables import EVENT_CONTENT_COLUMNS

LEAD_COLUMNS = ("lead_id", "created_at", "owner_id", "source")
#: A leads frame may carry its attributes already as stored JSON text in this column (the sparse path: a CRM's
#: custom fields as one object per lead, never spread over a column per name). No CRM field can be called this:
#: it holds a NUL, which no name the API or a CSV file gives can.
ATTRIBUTES_JSON = "\x00attributes"


def upsert_leads(bulk: Bulk, leads: pd.DataFrame, now: Any) -> dict[str, int]:
    """Create or replace validated ``leads``; count them as created, updated (other content) or unchanged.

    Extra columns are stored together as the JSON ``attributes`` of each lead (or come as that JSON already, in
    the :data:`ATTRIBUTES_JSON` column).
    """
    frame = leads.sort_values("lead_id", kind="stable", ignore_index=True)  # one lock order for every writer
    if ATTRIBUTES_JSON in frame.columns:
        texts = frame[ATTRIBUTES_JSON].tolist()
    else:
        texts = attributes_json(frame, [c for c in frame.columns if c not in LEADS.names])
    values = [column_values(bulk, frame[c]) for c in LEAD_COLUMNS]
    rows = list(zip(*values, texts, strict=True))
    bulk.stage("staging_leads", "leads", [*LEAD_COLUMNS, "attributes"], rows)
    existing = bulk.fetch(
        "SELECT count(*) FROM staging_leads s WHERE EXISTS (SELECT 1 FROM leads l WHERE l.lead_id = s.lead_id)"
    )[0][0]
    content = ("created_at", "owner_id", "source", "attributes")
    assignments = ", ".join(f"{c} = excluded.{c}" for c in (*content, "updated_at"))
    changed = " OR ".join(f"leads.{c} {bulk.distinct} excluded.{c}" for c in content)
    moved = reassigned_days(bulk.conn)  # before the write: the days whose counts follow a lead's old owner
    written = bulk.execute(
        "INSERT INTO leads (lead_id, created_at, owner_id, source, attributes, updated_at) "
        f"SELECT lead_id, created_at, owner_id, source, attributes, {bulk.placeholder} FROM staging_leads "
        f"{bulk.where_true} ORDER BY lead_id "
        f"ON CONFLICT (lead_id) DO UPDATE SET {assignments} WHERE {changed}",
        [now],
    )
    recount_days(bulk.conn, moved)
    if written:  # a lead's creation starts its first stay: the stays follow the stored lead
        recompute_stays(bulk.conn, staged_leads())
    created = len(frame) - existing
    updated = written - created
    return {"leads_created": created, "leads_updated": updated, "leads_unchanged": existing - updated}


def insert_events(bulk: Bulk, events: pd.DataFrame, raw_events: pd.DataFrame, now: Any) -> dict[str, int]:
    """Insert validated ``events`` idempotently on ``event_id``; count them as inserted or already stored.

    Raises
    ------
    ContractError
        An event's lead is not stored (rows numbered as in ``raw_events``, the frame as it was received).
    EventConflictError
        Event ids stored with other content, with the fields that differ.
    """
    frame = events.sort_values("event_id", kind="stable", ignore_index=True)  # one lock order for every writer
    bulk.stage("staging_events", "events", EVENTS.names, rows_of(bulk, frame, EVENTS.names))

    unknown = [
        row[0]
        for row in bulk.fetch(
            "SELECT DISTINCT s.lead_id FROM staging_events s "
            "WHERE NOT EXISTS (SELECT 1 FROM leads l WHERE l.lead_id = s.lead_id) ORDER BY s.lead_id"
        )
    ]
    if unknown:
        rows = np.flatnonzero(raw_events["lead_id"].astype(str).isin(unknown).to_numpy()) + 1
        message = f"event for an unknown lead (not in this request and not in the store): {unknown[:10]}"
        raise ContractError(
            [Problem(table="events", column="lead_id", rows=tuple(int(r) for r in rows), message=message)]
        )

    columns = ", ".join(EVENTS.names)
    inserted = bulk.execute(
        f"INSERT INTO events ({columns}, ingested_at) SELECT {columns}, {bulk.placeholder} FROM staging_events "
        f"{bulk.where_true} ORDER BY event_id ON CONFLICT (event_id) DO NOTHING",
        [now],
    )
    already = len(frame) - inserted
    if already:
        # Ids that were there already (a retry, or another client's concurrent batch): same content or conflict.
        flags = ", ".join(f"e.{c} {bulk.distinct} s.{c}" for c in EVENT_CONTENT_COLUMNS)
        differs = " OR ".join(f"e.{c} {bulk.distinct} s.{c}" for c in EVENT_CONTENT_COLUMNS)
        clashes = bulk.fetch(
            f"SELECT s.event_id, {flags} FROM staging_events s JOIN events e ON e.event_id = s.event_id "
            f"WHERE {differs} ORDER BY s.event_id"
        )
        if clashes:
            raise EventConflictError(
                [
                    EventConflict(
                        str(row[0]), tuple(c for c, d in zip(EVENT_CONTENT_COLUMNS, row[1:], strict=True) if d)
                    )
                    for row in clashes
                ]
            )
    if inserted:  # the read model follows the stored events (see leadscore.store.read_model)
        recount_days(bulk.conn, staged_event_days(bulk.conn))
        advance_first_touches(bulk.conn)
        recompute_stays(bulk.conn, staged_funnel_leads())
    return {"events_inserted": inserted, "events_already_stored": already}
