"""The latest score of each open lead (table ``lead_scores``): marked stale, claimed, written and read in SQL.

The life of a row:

- *marked*: an ingestion that changes a lead (new events, a lead created or replaced) marks it ``stale`` in the
  same transaction (:func:`mark_changed`), creating the row if there is none; ``changes`` counts the marks. So an
  acknowledged batch is never lost: the queue is in the database, not in a process;
- *claimed*: the keeper takes a batch of stale rows, or of rows whose cutoff is older than the refresh period
  (:func:`claim`), remembering each row's ``changes``;
- *written*: the new scores replace the rows (:func:`write_scores`); a row is current again only if no mark came
  in meanwhile (its ``changes`` is still the one claimed), otherwise it stays stale and is claimed again. Leads
  no longer open lose their row;
- *failed*: a lead whose re-score raised keeps its last score, says ``stale`` with the reason, and is retried
  after ``retry_at`` (or at once when new data arrives).

Reads: one lead's row (:func:`read_one`), and a page of the prioritised list (:func:`page`) filtered, ordered and
paginated by the database on indexed columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.store import lead_events
from leadscore.store.bulk import Bulk
from leadscore.store.reads import open_leads_sql
from leadscore.store.tables import lead_scores_table, score_history_table

#: Why a lead has no score yet / why its score is out of date after an ingestion.
NOT_SCORED_YET = "not scored yet"
NEW_DATA = "new data since this score; re-scoring is queued"

#: The filters of the prioritised list, by query name and column.
FILTERS: Mapping[str, str] = {
    "owner": "owner_id",
    "stage": "stage",
    "grade": "grade",
    "source": "source",
    "needs_follow_up": "needs_follow_up",
}
#: The list's orders: best first, ties by lead id.
ORDER_COLUMNS: Mapping[str, str] = {"probability": "probability", "expected_value": "expected_value_order"}

#: The columns a read returns (the row as the API shows it).
ROW_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "model_version",
    "cutoff",
    "probability",
    "grade",
    "percentile",
    "expected_value",
    "provisional",
    "reasons",
    "owner_id",
    "source",
    "stage",
    "deal_amount",
    "relationship_start",
    "last_interaction",
    "next_scheduled",
    "days_since_last_touch",
    "needs_follow_up",
    "cadence_days",
    "stale",
    "stale_reason",
    "computed_at",
)
#: What a score carries into its row (the rest is bookkeeping).
SCORE_COLUMNS: tuple[str, ...] = ROW_COLUMNS[1:19]
_TIMESTAMPS = ("cutoff", "relationship_start", "last_interaction", "next_scheduled")
#: Written when the scores carry them (numbers; missing: NULL): the lead's own cadence, for :func:`follow_up_facts`.
_OPTIONAL_COLUMNS = ("own_cadence_days",)


@dataclass(frozen=True)
class Claim:
    """A row taken by the keeper: its lead, how many marks it had, and the score it had (for the history)."""

    lead_id: str
    changes: int
    probability: float | None
    grade: str | None
    model_version: str | None


def mark_changed(bulk: Bulk, now: Any, *, leads: bool, events: bool) -> int:
    """Mark stale the leads this transaction changed: those of ``staging_leads`` it created or replaced
    (``updated_at = now``) and those of ``staging_events`` with events it inserted (``ingested_at = now``).

    Runs inside the ingesting transaction, so the mark is stored if and only if the data is. Returns the number
    of rows marked or created.
    """
    ph = bulk.placeholder
    parts, params = [], []
    if leads:
        parts.append(
            f"SELECT s.lead_id FROM staging_leads s JOIN leads l ON l.lead_id = s.lead_id WHERE l.updated_at = {ph}"
        )
        params.append(now)
    if events:
        parts.append(
            "SELECT s.lead_id FROM staging_events s JOIN events e ON e.event_id = s.event_id "
            f"WHERE e.ingested_at = {ph}"
        )
        params.append(now)
    if not parts:
        return 0
    return bulk.execute(
        "INSERT INTO lead_scores (lead_id, stale, stale_reason, changes) "
        f"SELECT DISTINCT lead_id, true, {ph}, 1 FROM ({' UNION '.join(parts)}) c {bulk.where_true} ORDER BY lead_id "
        "ON CONFLICT (lead_id) DO UPDATE SET stale = true, changes = lead_scores.changes + 1, retry_at = NULL, "
        f"stale_reason = CASE WHEN lead_scores.probability IS NULL THEN {ph} ELSE {ph} END",
        [NOT_SCORED_YET, *params, NOT_SCORED_YET, NEW_DATA],
    )


def queue_unscored_open_leads(bulk: Bulk, now: datetime) -> int:
    """Give a stale row to every lead open at ``now`` that has none (a lead created with a future date, a store
    loaded before this table existed). Returns how many were queued."""
    sql, params = open_leads_sql(bulk, now)
    ph = bulk.placeholder
    return bulk.execute(
        f"INSERT INTO lead_scores (lead_id, stale, stale_reason, changes) SELECT o.lead_id, true, {ph}, 0 "
        f"FROM ({sql}) o WHERE NOT EXISTS (SELECT 1 FROM lead_scores s WHERE s.lead_id = o.lead_id) "
        "ORDER BY o.lead_id ON CONFLICT (lead_id) DO NOTHING",
        [NOT_SCORED_YET, *params],
    )


def mark_other_versions(conn: Connection, version: str) -> int:
    """Mark stale every row scored by another model version than ``version``, saying which; returns the count.

    ``changes`` is counted up, so a batch scored by the old version while this ran stays stale when written.
    """
    t = lead_scores_table
    reason = (
        sa.literal("scored by model version ") + t.c.model_version + sa.literal(f"; re-scoring with version {version}")
    )
    stmt = (
        sa.update(t)
        .where(t.c.model_version.is_not(None), t.c.model_version != version)
        .values(
            stale=True,
            changes=t.c.changes + 1,
            retry_at=None,
            stale_reason=sa.case((t.c.stale, t.c.stale_reason), else_=reason),
        )
    )
    return conn.execute(stmt).rowcount


def claim(conn: Connection, limit: int, *, now: datetime, due_before: datetime) -> list[Claim]:
    """Up to ``limit`` rows to re-score: stale ones first (not waiting for a retry), then current ones whose
    cutoff is before ``due_before`` (time moved on), oldest first."""
    t = lead_scores_table
    columns = (t.c.lead_id, t.c.changes, t.c.probability, t.c.grade, t.c.model_version)
    # `stale` alone (not `stale = 1`), the partial index's own condition, so SQLite uses the index.
    stale = (
        sa.select(*columns)
        .where(sa.text("stale"), sa.or_(t.c.retry_at.is_(None), t.c.retry_at <= now))
        .order_by(t.c.lead_id)
        .limit(limit)
    )
    rows = conn.execute(stale).all()
    if len(rows) < limit:
        due = (
            sa.select(*columns)
            .where(sa.not_(t.c.stale), t.c.cutoff < due_before)
            .order_by(t.c.cutoff)
            .limit(limit - len(rows))
        )
        rows.extend(conn.execute(due).all())
    return [Claim(*row) for row in rows]


def write_scores(
    conn: Connection,
    scores: pd.DataFrame,
    claims: Mapping[str, Claim],
    *,
    computed_at: datetime,
    history_change: float,
) -> dict[str, int]:
    """Store the new scores of claimed leads, and drop the rows of claimed leads that have none (no longer open).

    ``scores`` has the :data:`SCORE_COLUMNS` (``reasons`` as ``reasons_up``/``reasons_down``) and ``lead_id``. A
    row becomes current only if it was not marked again since it was claimed. A score is added to the lead's
    history when it is its first, from another model version or grade, or moves by ``history_change`` or more.
    ``changed_at`` becomes ``computed_at`` when the probability or the grade differs from the row's (a first
    score included), and stays as it was otherwise. A grade crossed or a lead newly needing follow-up is put in the
    webhooks' outbox in this same transaction (:mod:`leadscore.store.lead_events`). Returns the counts written,
    dropped, added to the history and enqueued as events.
    """
    t = lead_scores_table
    rows = _score_rows(scores)
    seen = {row["b_lead_id"]: claims[row["b_lead_id"]].changes for row in rows}
    for row in rows:
        row["b_seen"] = seen[row["b_lead_id"]]
        row["b_computed_at"] = computed_at
    unchanged = t.c.changes == sa.bindparam("b_seen")
    previous = lead_events.before(conn, [row["b_lead_id"] for row in rows])  # None: nobody subscribed
    if rows:
        values = {c: sa.bindparam(f"b_{c}") for c in (*SCORE_COLUMNS, *_OPTIONAL_COLUMNS) if c != "reasons"}
        values["reasons"] = sa.bindparam("b_reasons", type_=t.c.reasons.type)
        values["expected_value_order"] = sa.bindparam("b_expected_value_order")
        # Compared with the row as it was (the right-hand side of an UPDATE reads the old values on both
        # databases): the score moved only if its probability or grade differs.
        moved = sa.or_(
            t.c.probability.is_distinct_from(sa.bindparam("b_probability")),
            t.c.grade.is_distinct_from(sa.bindparam("b_grade")),
        )
        stmt = (
            sa.update(t)
            .where(t.c.lead_id == sa.bindparam("b_lead_id"))
            .values(
                **values,
                changed_at=sa.case((moved, sa.bindparam("b_computed_at")), else_=t.c.changed_at),
                computed_at=sa.bindparam("b_computed_at"),
                retry_at=None,
                stale=sa.case((unchanged, False), else_=True),
                stale_reason=sa.case((unchanged, None), else_=t.c.stale_reason),
            )
        )
        conn.execute(stmt, rows)
    scored = {row["b_lead_id"] for row in rows}
    gone = [{"b_lead_id": lead, "b_seen": claim.changes} for lead, claim in claims.items() if lead not in scored]
    if gone:
        conn.execute(sa.delete(t).where(t.c.lead_id == sa.bindparam("b_lead_id"), unchanged), gone)
    history = [_history_row(row) for row in rows]
    history = [h for h in history if _worth_recording(h, claims[h["lead_id"]], history_change)]
    if history:
        conn.execute(sa.insert(score_history_table), history)
    events = 0 if previous is None else lead_events.enqueue_changes(conn, previous, rows, now=computed_at)
    return {"written": len(rows), "dropped": len(gone), "history": len(history), "events": events}


def fail(conn: Connection, claims: Sequence[Claim], reason: str, *, retry_at: datetime) -> None:
    """Keep the last scores of these leads, stale with ``reason``, until ``retry_at`` or new data."""
    t = lead_scores_table
    stmt = (
        sa.update(t)
        .where(t.c.lead_id == sa.bindparam("b_lead_id"))
        .values(stale=True, stale_reason=reason, retry_at=retry_at)
    )
    conn.execute(stmt, [{"b_lead_id": c.lead_id} for c in claims])


def read_one(conn: Connection, lead_id: str) -> dict[str, Any] | None:
    """One lead's row (:data:`ROW_COLUMNS`), or None."""
    t = lead_scores_table
    row = conn.execute(sa.select(*(t.c[c] for c in ROW_COLUMNS)).where(t.c.lead_id == lead_id)).first()
    return None if row is None else _read_row(row)


def recent_history(conn: Connection, lead_id: str, *, before: datetime, limit: int) -> list[dict[str, Any]]:
    """A lead's recorded scores from before ``before``, newest first, as plain rows (the one-lead read's trend:
    no frame built)."""
    t = score_history_table
    columns = ("scored_at", "cutoff", "probability", "grade", "percentile", "model_version")
    stmt = (
        sa.select(*(t.c[c] for c in columns))
        .where(t.c.lead_id == lead_id, t.c.scored_at < before)
        .order_by(t.c.scored_at.desc(), t.c.id.desc())
        .limit(limit)
    )
    return [dict(zip(columns, row, strict=True)) for row in conn.execute(stmt)]


def page(
    conn: Connection, *, order_by: str, filters: Mapping[str, Any], limit: int, offset: int
) -> tuple[int, int, list[dict[str, Any]]]:
    """A page of the scored leads, best first by ``order_by`` (ties by lead id), with the ``filters`` (query
    names of :data:`FILTERS`, None for no filter).

    Returns the number of leads that pass the filters, the number of scored leads, and the page's rows, each
    with ``at_or_below``: how many scored leads have a probability at or below its own (for its percentile
    among all open leads).
    """
    t = lead_scores_table
    scored = t.c.probability.is_not(None)
    conditions = [scored]
    for name, value in filters.items():
        if value is not None:
            conditions.append(t.c[FILTERS[name]] == value)
    key = t.c[ORDER_COLUMNS[order_by]]
    stmt = (
        sa.select(*(t.c[c] for c in ROW_COLUMNS))
        .where(*conditions)
        .order_by(key.desc(), t.c.lead_id)
        .limit(limit)
        .offset(offset)
    )
    rows = [_read_row(row) for row in conn.execute(stmt)]
    n_scored = conn.execute(sa.select(sa.func.count()).select_from(t).where(scored)).scalar_one()
    total = (
        n_scored
        if len(conditions) == 1
        else conn.execute(sa.select(sa.func.count()).select_from(t).where(*conditions)).scalar_one()
    )
    above = _counts_above(conn, sorted({row["probability"] for row in rows}))
    for row in rows:
        row["at_or_below"] = n_scored - above[row["probability"]]
    return int(total), int(n_scored), rows


def all_scored(conn: Connection) -> list[dict[str, Any]]:
    """Every kept row with a score, by lead id (for a reader that needs the whole list, the web app's)."""
    t = lead_scores_table
    stmt = sa.select(*(t.c[c] for c in ROW_COLUMNS)).where(t.c.probability.is_not(None)).order_by(t.c.lead_id)
    return [_read_row(row) for row in conn.execute(stmt)]


def follow_up_facts(conn: Connection) -> pd.DataFrame:
    """What the follow-up rule reads of every kept score (``lead_id``, ``computed_at``, ``probability``,
    ``days_since_last_touch``, ``has_next_step``, ``stage``, ``own_cadence_days``) and the flag and gap it gave
    (``needs_follow_up``, ``cadence_days``): one pass over the open leads' rows, no history."""
    t = lead_scores_table
    names = ("lead_id", "computed_at", "probability", "days_since_last_touch", "stage", "own_cadence_days")
    stmt = sa.select(
        *(t.c[c] for c in names), t.c.next_scheduled.is_not(None), t.c.needs_follow_up, t.c.cadence_days
    ).where(t.c.probability.is_not(None))
    rows = conn.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=[*names, "has_next_step", "needs_follow_up", "cadence_days"])
    for name in ("probability", "days_since_last_touch", "own_cadence_days", "cadence_days"):
        frame[name] = pd.to_numeric(frame[name]).astype("float64")
    for name in ("has_next_step", "needs_follow_up"):
        frame[name] = frame[name].fillna(False).astype(bool)
    return frame


def write_follow_up(conn: Connection, changes: Sequence[Mapping[str, Any]]) -> int:
    """Set ``needs_follow_up`` and ``cadence_days`` of rows (``lead_id``, ``computed_at`` as read, ``flag``,
    ``gap``), each only if it was not re-scored since it was read. Returns how many were set."""
    if not changes:
        return 0
    t = lead_scores_table
    stmt = (
        sa.update(t)
        .where(t.c.lead_id == sa.bindparam("b_lead_id"), t.c.computed_at == sa.bindparam("b_computed_at"))
        .values(needs_follow_up=sa.bindparam("b_flag"), cadence_days=sa.bindparam("b_gap"))
    )
    rows = [
        {
            "b_lead_id": str(c["lead_id"]),
            "b_computed_at": pd.Timestamp(c["computed_at"]).to_pydatetime(),
            "b_flag": bool(c["flag"]),
            "b_gap": None if _missing(c["gap"]) else float(c["gap"]),
        }
        for c in changes
    ]
    return conn.execute(stmt, rows).rowcount


#: The columns :func:`changed_since` returns: what a CRM imports back.
CHANGED_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "probability",
    "grade",
    "percentile",
    "expected_value",
    "model_version",
    "cutoff",
    "changed_at",
    "reasons",
    "stale",
    "stale_reason",
)


def changed_since(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """The kept scores whose probability or grade changed after ``since`` (``changed_at > since``), by lead id:
    one index range (``ix_lead_scores_changed_at``)."""
    t = lead_scores_table
    stmt = (
        sa.select(*(t.c[c] for c in CHANGED_COLUMNS))
        .where(t.c.changed_at > since, t.c.probability.is_not(None))
        .order_by(t.c.lead_id)
    )
    out = []
    for row in conn.execute(stmt):
        item = dict(zip(CHANGED_COLUMNS, row, strict=True))
        reasons = item.pop("reasons") or {}
        item["reasons_up"] = reasons.get("up", [])
        item["reasons_down"] = reasons.get("down", [])
        item["stale"] = bool(item["stale"])
        out.append(item)
    return out


def _counts_above(conn: Connection, probabilities: Sequence[float]) -> dict[float, int]:
    """How many scored leads have a probability above each of ``probabilities`` (one index range count each)."""
    t = lead_scores_table
    counts: dict[float, int] = {}
    for p in probabilities:
        counts[p] = conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.probability > p)).scalar_one()
    return counts


# -------------------------------------------------------------------- rows


def _score_rows(scores: pd.DataFrame) -> list[dict[str, Any]]:
    """Scores as update parameters (``b_<column>``): timestamps as aware datetimes, missing values as None."""
    n = len(scores)
    columns: dict[str, list[Any]] = {"b_lead_id": scores["lead_id"].astype(str).tolist()}
    for name in SCORE_COLUMNS:
        if name == "reasons":
            columns["b_reasons"] = [
                {"up": list(up), "down": list(down)}
                for up, down in zip(scores["reasons_up"], scores["reasons_down"], strict=True)
            ]
        elif name in _TIMESTAMPS:
            stamps = pd.to_datetime(scores[name], utc=True).dt.floor("us")
            columns[f"b_{name}"] = [None if pd.isna(v) else v.to_pydatetime() for v in stamps]
        else:
            values = scores[name].to_numpy(dtype=object)
            columns[f"b_{name}"] = [None if _missing(v) else _plain(v) for v in values]
    for name in _OPTIONAL_COLUMNS:
        values = scores[name].to_numpy(dtype=float) if name in scores else np.full(n, np.nan)
        columns[f"b_{name}"] = [None if np.isnan(v) else float(v) for v in values]
    value = scores["expected_value"].to_numpy(dtype=float)
    columns["b_expected_value_order"] = np.where(np.isnan(value), -np.inf, value).tolist()
    return [{k: columns[k][i] for k in columns} for i in range(n)]


def _missing(value: Any) -> bool:
    return value is None or (np.ndim(value) == 0 and pd.isna(value))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _history_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "lead_id": row["b_lead_id"],
        "scored_at": row["b_computed_at"],
        "cutoff": row["b_cutoff"],
        "probability": row["b_probability"],
        "grade": row["b_grade"],
        "percentile": row["b_percentile"],
        "model_version": row["b_model_version"],
        "reasons": row["b_reasons"],
    }


def _worth_recording(history: Mapping[str, Any], claim: Claim, change: float) -> bool:
    if claim.probability is None:
        return True
    return (
        history["model_version"] != claim.model_version
        or history["grade"] != claim.grade
        or abs(history["probability"] - claim.probability) >= change
    )


def _read_row(row: Any) -> dict[str, Any]:
    out = dict(zip(ROW_COLUMNS, row, strict=True))
    reasons = out.pop("reasons") or {}
    out["reasons_up"] = reasons.get("up", [])
    out["reasons_down"] = reasons.get("down", [])
    for name in ("provisional", "needs_follow_up", "stale"):
        if out[name] is not None:
            out[name] = bool(out[name])
    return out
