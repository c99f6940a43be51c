"""Reading leads and events in bulk, as frames typed the way the data contracts type them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.contracts import CLOSING_EVENT_TYPES, EVENTS, LEADS, TableContract
from leadscore.store.bulk import Bulk

#: Ids per ``IN (...)`` list: well under SQLite's and PostgreSQL's bound-parameter limits.
ID_CHUNK = 5_000
LEAD_COLUMNS = ("lead_id", "created_at", "owner_id", "source")


def chunks(ids: Sequence[Any], size: int = ID_CHUNK) -> list[Sequence[Any]]:
    """``ids`` in slices of at most ``size``."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def read_leads(
    bulk: Bulk, lead_ids: Iterable[str] | None, open_at: datetime | None, attributes: Sequence[str] | None = None
) -> pd.DataFrame:
    """Stored leads (all, those in ``lead_ids``, and/or those open at ``open_at``) ordered by ``lead_id``.

    ``attributes`` names the attributes to read as columns (default: all of them). A selection is read by the
    database from each lead's JSON (only the chosen keys leave it), so its cost does not grow with the number of
    other custom fields a CRM keeps; ``[]`` reads none.
    """
    if attributes is None:
        select = f"SELECT lead_id, {bulk.read_timestamp_sql('created_at')}, owner_id, source, attributes FROM leads"
        rows, parts = _fetch_filtered(bulk, select, "lead_id", lead_ids, open_at, order="lead_id")
        leads = _leads_frame(bulk, rows)
        return leads.sort_values("lead_id", ignore_index=True) if parts else leads
    select = f"SELECT lead_id, {bulk.read_timestamp_sql('created_at')}, owner_id, source FROM leads"
    rows, parts = _fetch_filtered(bulk, select, "lead_id", lead_ids, open_at, order="lead_id")
    leads = typed(bulk, pd.DataFrame.from_records(rows, columns=list(LEAD_COLUMNS)), LEADS)
    if parts:
        leads = leads.sort_values("lead_id", ignore_index=True)
    wanted = [a for a in dict.fromkeys(attributes) if a not in LEADS.names]
    if not wanted or leads.empty:
        return leads
    entries = _attribute_entries(bulk, wanted, lead_ids, open_at)
    return pd.concat([leads, _spread(entries, leads["lead_id"], wanted)], axis=1)


def _attribute_entries(
    bulk: Bulk, names: Sequence[str], lead_ids: Iterable[str] | None, open_at: datetime | None
) -> list[tuple]:
    """(lead_id, name, value) of the stored attributes called ``names``, of the chosen leads."""
    rows: list[tuple] = []
    for part in chunks(list(names), 500):  # bound parameters per statement stay well under the drivers' limits
        select = (
            "SELECT lead_id, name, value FROM (SELECT l.lead_id AS lead_id, j.key AS name, j.value AS value "
            f"FROM leads l, {bulk.json_each}(l.attributes) AS j WHERE j.key IN ({bulk.placeholders(len(part))})) a"
        )
        found, _ = _fetch_filtered(bulk, select, "lead_id", lead_ids, open_at, order="lead_id", first=list(part))
        rows.extend(found)
    return rows


def _spread(entries: list[tuple], lead_ids: pd.Series, names: Sequence[str]) -> pd.DataFrame:
    """Long (lead_id, name, value) entries as one column per name, aligned on ``lead_ids`` (missing: NaN)."""
    long = pd.DataFrame.from_records(entries, columns=["lead_id", "name", "value"])
    position = pd.Index(lead_ids)
    out = {}
    for name, group in long.groupby("name", sort=False):  # one pass per chosen name, not per lead
        column = pd.Series(np.nan, index=lead_ids.index, dtype=object)
        column.iloc[position.get_indexer(group["lead_id"])] = group["value"].to_numpy(dtype=object)
        out[name] = _typed_attribute(column)
    return pd.DataFrame({name: out[name] for name in names if name in out}, index=lead_ids.index)


def _typed_attribute(values: pd.Series) -> pd.Series:
    """An attribute column as the full read types it: numbers as numbers, text as ``str``."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind == "string":
        return values.astype("str")
    if kind in ("integer", "floating", "mixed-integer-float", "boolean"):
        return values.astype("float64")
    return values


def read_events(bulk: Bulk, lead_ids: Iterable[str] | None, open_at: datetime | None) -> pd.DataFrame:
    """Stored events of the chosen leads, ordered by ``lead_id``, ``at``, ``event_id``."""
    columns = [bulk.read_timestamp_sql(c) if c in ("at", "scheduled_for") else c for c in EVENTS.names]
    select = f"SELECT {', '.join(columns)} FROM events"
    rows, parts = _fetch_filtered(bulk, select, "lead_id", lead_ids, open_at, order="lead_id, at, event_id")
    events = typed(bulk, pd.DataFrame.from_records(rows, columns=EVENTS.names), EVENTS)
    return events.sort_values(["lead_id", "at", "event_id"], ignore_index=True) if parts else events


def open_leads_sql(bulk: Bulk, t: datetime) -> tuple[str, list[Any]]:
    """SQL selecting the lead ids open at ``t`` (created by then, not won or lost by then), with its params."""
    # Written exactly as the partial index ix_events_closing's condition, so that the planner uses it.
    closing = ", ".join(f"'{name}'" for name in CLOSING_EVENT_TYPES)
    ph = bulk.placeholder
    sql = (
        f"SELECT o.lead_id FROM leads o WHERE o.created_at <= {ph} AND NOT EXISTS "
        f"(SELECT 1 FROM events c WHERE c.lead_id = o.lead_id AND c.type IN ({closing}) AND c.at <= {ph})"
    )
    at = bulk.write_timestamp(pd.Timestamp(t).tz_convert("UTC"))
    return sql, [at, at]


def _fetch_filtered(
    bulk: Bulk,
    select: str,
    key: str,
    lead_ids: Iterable[str] | None,
    open_at: datetime | None,
    *,
    order: str,
    first: Sequence[Any] = (),
) -> tuple[list[tuple], bool]:
    """Rows of ``select`` (whose own parameters are ``first``) for the given leads and/or the leads open at
    ``open_at``, each query in ``order``.

    Returns the rows and whether they came from several queries (then only each part is in order).
    """
    conditions: list[str] = []
    params: list[Any] = list(first)
    if open_at is not None:
        sql, open_params = open_leads_sql(bulk, open_at)
        conditions.append(f"{key} IN ({sql})")
        params.extend(open_params)
    if lead_ids is None:
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return bulk.fetch(f"{select}{where} ORDER BY {order}", params), False
    ids = list(dict.fromkeys(lead_ids))
    rows: list[tuple] = []
    for chunk in chunks(ids):
        where = " AND ".join([*conditions, f"{key} IN ({bulk.placeholders(len(chunk))})"])
        rows.extend(bulk.fetch(f"{select} WHERE {where} ORDER BY {order}", [*params, *chunk]))
    return rows, len(ids) > ID_CHUNK


def typed(bulk: Bulk, frame: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    """Driver rows as a frame of ``contract``'s columns, typed as ``validate`` types them."""
    out = {}
    for col in contract.columns:
        values = frame[col.name]
        if col.kind == "timestamp":
            out[col.name] = bulk.timestamps_from(values)
        elif col.kind == "float":
            out[col.name] = pd.to_numeric(values).astype("float64")
        else:
            out[col.name] = values.astype("str")
    return pd.DataFrame(out, index=frame.index)


def _leads_frame(bulk: Bulk, rows: list[tuple]) -> pd.DataFrame:
    """Lead rows with their JSON attributes spread into columns (text attributes as ``str`` columns)."""
    frame = pd.DataFrame.from_records(rows, columns=[*LEAD_COLUMNS, "attributes"])
    attributes = bulk.json_from(frame.pop("attributes"))
    base = typed(bulk, frame, LEADS)
    if not any(attributes):
        return base
    extras = pd.DataFrame(attributes, index=base.index)
    extras = extras.drop(columns=[c for c in extras.columns if c in LEADS.names])
    for col in extras.columns:
        if extras[col].dtype == object and pd.api.types.infer_dtype(extras[col], skipna=True) == "string":
            extras[col] = extras[col].astype("str")
    return pd.concat([base, extras], axis=1)
