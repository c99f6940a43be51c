"""The repository: every read and write of the store, in frames that follow the data contracts.

Writes take raw frames, validate them against :mod:`leadscore.data.contracts` (the store is an edge) and run in one
transaction each, so a request is stored entirely or not at all. Reads return frames that are already
normalised the way :func:`leadscore.data.contracts.validate` would leave them, so library code can use them as is.

Events are idempotent on ``event_id``: a batch is staged, inserted with ``INSERT ... ON CONFLICT DO NOTHING``, and
the ids that were already there are compared with what is stored. The same content is a no-op; other content is
an :class:`~leadscore.store.errors.EventConflictError` naming the ids, and the transaction is rolled back
(:mod:`~leadscore.store.ingest`). Bulk reads go through :mod:`~leadscore.store.reads`; goals, expenses and score
history are small and use SQLAlchemy Core directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from leadscore.data.contracts import (
    EVENTS,
    EXPENSES,
    GOALS,
    LEADS,
    ContractError,
    CrmData,
    Problem,
    TableContract,
    validate,
)
from leadscore.data.records import records
from leadscore.store import scores as latest
from leadscore.store.bulk import Bulk, attributes_text, native
from leadscore.store.engine import create_engine, run_in_write_transaction
from leadscore.store.errors import UnknownLeadError
from leadscore.store.ingest import ATTRIBUTES_JSON, insert_events, upsert_leads
from leadscore.store.reads import chunks, open_leads_sql, read_events, read_leads
from leadscore.store.tables import (
    events_table,
    expenses_table,
    goals_table,
    lead_scores_table,
    leads_table,
    score_history_table,
)


@dataclass(frozen=True)
class IngestResult:
    """What an ingestion stored.

    ``*_received`` counts the rows sent (exact repeats within the request included); leads are ``created``,
    ``updated`` (stored with other content, now replaced) or ``unchanged``; events are ``inserted`` or were
    ``already_stored`` with the same content.
    """

    leads_received: int = 0
    leads_created: int = 0
    leads_updated: int = 0
    leads_unchanged: int = 0
    events_received: int = 0
    events_inserted: int = 0
    events_already_stored: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Repository:
    """Reads and writes of the leadscore store.

    Parameters
    ----------
    engine
        An engine from :func:`leadscore.store.engine.create_engine` on a migrated database.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from leadscore.store.migrate import upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> repo = Repository.from_url(url)
    >>> leads = pd.DataFrame({"lead_id": ["L1"], "created_at": ["2024-01-01"], "segment": ["smb"]})
    >>> events = pd.DataFrame({"event_id": ["e1"], "lead_id": ["L1"], "at": ["2024-01-02"], "type": ["call"]})
    >>> repo.ingest(leads=leads, events=events).events_inserted
    1
    >>> repo.ingest(events=events).events_already_stored  # a retry stores nothing twice
    1
    >>> repo.load_leads()[["lead_id", "segment"]].values.tolist()
    [['L1', 'smb']]
    """

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Repository:
        """A repository on a new engine for ``url``."""
        return cls(create_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    # ---------------------------------------------------------------- leads and events

    def ingest(
        self,
        leads: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        *,
        lead_attributes: Sequence[Mapping[str, Any]] | None = None,
    ) -> IngestResult:
        """Upsert ``leads`` and insert ``events`` idempotently, all in one transaction.

        Leads are upserted first, so events may refer to leads of the same call as well as stored ones.
        A stored lead sent again is replaced by what was sent (the CRM's current view of it). The leads that
        changed (created, replaced, or with new events) are marked stale in ``lead_scores`` in the same
        transaction, for the score keeper (:mod:`leadscore.store.scores`).

        A lead's attributes are the extra columns of ``leads``, or, given ``lead_attributes`` (one mapping per
        row of ``leads``, which then has only the contract's columns), those mappings: the sparse form of a CRM's
        custom fields, stored as they come without a column per name ever being built.

        A lead's attributes are the extra columns of ``leads``, or, given ``lead_attributes`` (one mapping per
        row of ``leads``, which then has only the contract's columns), those mappings: the sparse form of a CRM's
        custom fields, stored as they come without a column per name ever being built.

        Raises
        ------
        ContractError
            A row breaks its contract, or an event names a lead neither in ``leads`` nor in the store (the
            problem names the 1-based rows of ``events``). Nothing is stored.
        EventConflictError
            An ``event_id`` is already stored with other content. Nothing is stored.
        """
        if lead_attributes is not None:
            leads = _with_attribute_texts(leads, lead_attributes)
        valid_leads, valid_events = self._validate_input(leads, events)

        def work(conn: Connection) -> IngestResult:
            bulk = Bulk.for_connection(conn)
            now = bulk.write_timestamp(_now())
            counts: dict[str, int] = {}
            if valid_leads is not None and len(valid_leads):
                counts.update(upsert_leads(bulk, valid_leads, now))
            if valid_events is not None and len(valid_events):
                assert events is not None
                counts.update(insert_events(bulk, valid_events, events, now))
            # The leads changed here are marked stale in this same transaction: stored together, or not at all.
            latest.mark_changed(
                bulk,
                now,
                leads=valid_leads is not None and len(valid_leads) > 0,
                events=valid_events is not None and len(valid_events) > 0,
            )
            return IngestResult(
                leads_received=0 if leads is None else len(leads),
                events_received=0 if events is None else len(events),
                **counts,
            )

        return run_in_write_transaction(self.engine, work)

    def upsert_leads(self, leads: pd.DataFrame) -> IngestResult:
        """Create or replace leads (see :meth:`ingest`)."""
        return self.ingest(leads=leads)

    def insert_events(self, events: pd.DataFrame) -> IngestResult:
        """Insert events idempotently on ``event_id`` (see :meth:`ingest`)."""
        return self.ingest(events=events)

    def _validate_input(
        self, leads: pd.DataFrame | None, events: pd.DataFrame | None
    ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        problems: list[Problem] = []
        out: list[pd.DataFrame | None] = []
        for contract, frame in ((LEADS, leads), (EVENTS, events)):
            if frame is None:
                out.append(None)
                continue
            try:
                out.append(validate(contract, frame))
            except ContractError as err:
                problems.extend(err.problems)
                out.append(None)
        if problems:
            raise ContractError(problems)
        return out[0], out[1]

    def _insert(self, table: sa.Table) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        if self.dialect == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"no upsert for dialect {self.dialect!r}")

    @staticmethod
    def _existing(conn: Connection, column: sa.Column, ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        for chunk in chunks(ids):
            found.extend(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
        return found

    def load_leads(
        self,
        lead_ids: Iterable[str] | None = None,
        *,
        open_at: datetime | None = None,
        attributes: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Stored leads (all, those in ``lead_ids``, and/or those open at ``open_at``), attributes as columns.

        A lead is open at ``t`` when it was created at or before ``t`` and has no won/lost event at or before
        ``t``. Ordered by ``lead_id``. ``attributes`` reads only these attributes (a model's selection: the cost
        does not grow with the other custom fields stored); default all of them.
        """
        with self.engine.connect() as conn:
            return read_leads(Bulk.for_connection(conn), lead_ids, open_at, attributes)

    def load_events(self, lead_ids: Iterable[str] | None = None, *, open_at: datetime | None = None) -> pd.DataFrame:
        """Stored events (all, of the leads in ``lead_ids``, and/or of the leads open at ``open_at``).

        All of an open lead's events are returned, later ones too: cutting at a point in time is the feature
        builder's job. Ordered by ``lead_id``, ``at``, ``event_id``.
        """
        with self.engine.connect() as conn:
            return read_events(Bulk.for_connection(conn), lead_ids, open_at)

    def load_crm(
        self,
        lead_ids: Iterable[str] | None = None,
        *,
        open_at: datetime | None = None,
        attributes: Sequence[str] | None = None,
    ) -> CrmData:
        """The stored data set (or the part of it for ``lead_ids`` / leads open at ``open_at``) as a CrmData;
        ``attributes`` as in :meth:`load_leads`."""
        ids = None if lead_ids is None else list(dict.fromkeys(lead_ids))
        return CrmData(
            leads=self.load_leads(ids, open_at=open_at, attributes=attributes),
            events=self.load_events(ids, open_at=open_at),
            goals=self.load_goals(),
            expenses=self.load_expenses(),
        )

    def count(self, table: str) -> int:
        """Number of rows in one of the store's tables (``leads``, ``events``, ``goals``, ...)."""
        tables = {
            t.name: t
            for t in (leads_table, events_table, goals_table, expenses_table, score_history_table, lead_scores_table)
        }
        if table not in tables:
            raise KeyError(f"no table {table!r} in the store; tables: {sorted(tables)}")
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tables[table])).scalar_one())

    def import_crm(self, data: CrmData, *, chunk_rows: int = 50_000) -> dict[str, int]:
        """Store a whole data set: leads, then events in chunks of ``chunk_rows``, goals, and expenses.

        Each chunk is its own transaction; leads and events are idempotent, so an interrupted import is
        completed by running it again. Expenses carry no key to recognise them by, so they are added only
        when the store has none yet. Returns what was stored, per table.
        """
        counts = {"leads": 0, "events": 0, "goals": 0, "expenses": 0}
        for start in range(0, len(data.leads), chunk_rows):
            result = self.ingest(leads=data.leads.iloc[start : start + chunk_rows])
            counts["leads"] += result.leads_created + result.leads_updated
        events = data.events.sort_values("event_id", ignore_index=True)
        for start in range(0, len(events), chunk_rows):
            counts["events"] += self.ingest(events=events.iloc[start : start + chunk_rows]).events_inserted
        if len(data.goals):
            counts["goals"] = self.upsert_goals(data.goals)
        if len(data.expenses) and self.count("expenses") == 0:
            counts["expenses"] = len(self.add_expenses(data.expenses))
        return counts

    # ---------------------------------------------------------------- goals and expenses

    def upsert_goals(self, goals: pd.DataFrame) -> int:
        """Create or update goals (key: metric, period, scope, start; the target is replaced). Returns the count."""
        valid = validate(GOALS, goals)
        rows = records(valid, GOALS.names)
        now = _now()
        for row in rows:
            row["updated_at"] = now
        if not rows:
            return 0
        insert = self._insert(goals_table)
        stmt = insert.on_conflict_do_update(
            index_elements=list(GOALS.key),
            set_={"target": insert.excluded.target, "updated_at": insert.excluded.updated_at},
        )
        run_in_write_transaction(self.engine, lambda conn: conn.execute(stmt, rows))
        return len(rows)

    def load_goals(self, *, in_force_at: Any = None) -> pd.DataFrame:
        """Every stored goal, as a goals contract frame ordered by metric, period, scope and start; with
        ``in_force_at``, only the goals in force then (for each metric, period and scope, the one that started
        last by that time: :func:`leadscore.analytics.goals.active_goals`), one probe of the goals' unique index
        each."""
        g, later = goals_table, goals_table.alias("later")
        stmt = sa.select(*(g.c[c] for c in GOALS.names))
        if in_force_at is not None:
            # Stored to the microsecond: a start at or before the time is one at or before it floored so.
            t = pd.Timestamp(in_force_at).tz_convert("UTC").floor("us").to_pydatetime()
            replaced = sa.select(sa.literal(1)).where(
                later.c.metric == g.c.metric,
                later.c.period == g.c.period,
                later.c.scope == g.c.scope,
                later.c.start > g.c.start,
                later.c.start <= t,
            )
            stmt = stmt.where(g.c.start <= t, ~replaced.exists())
        stmt = stmt.order_by(*(g.c[c] for c in ("metric", "period", "scope", "start")))
        with self.engine.connect() as conn:
            return _frame(conn.execute(stmt), GOALS)

    def delete_goal(self, metric: str, period: str, start: datetime, scope: str = "team") -> bool:
        """Delete one goal; return whether it existed."""
        stmt = sa.delete(goals_table).where(
            goals_table.c.metric == metric,
            goals_table.c.period == period,
            goals_table.c.scope == scope,
            goals_table.c.start == pd.Timestamp(start).tz_convert("UTC"),
        )
        return run_in_write_transaction(self.engine, lambda conn: conn.execute(stmt).rowcount) > 0

    def add_expenses(self, expenses: pd.DataFrame) -> list[int]:
        """Store expenses; return their ids in the order given."""
        rows = records(validate(EXPENSES, expenses), EXPENSES.names)
        if not rows:
            return []
        stmt = sa.insert(expenses_table).returning(expenses_table.c.id, sort_by_parameter_order=True)
        return run_in_write_transaction(self.engine, lambda conn: list(conn.execute(stmt, rows).scalars()))

    def load_expenses(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """Stored expenses with ``start <= at < end`` (either bound optional), indexed by ``expense_id``."""
        cols = [expenses_table.c.id, *(expenses_table.c[c] for c in EXPENSES.names)]
        stmt = sa.select(*cols).order_by(expenses_table.c.at, expenses_table.c.id)
        if start is not None:
            stmt = stmt.where(expenses_table.c.at >= pd.Timestamp(start).tz_convert("UTC"))
        if end is not None:
            stmt = stmt.where(expenses_table.c.at < pd.Timestamp(end).tz_convert("UTC"))
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            rows = result.all()
        ids = pd.Index([r[0] for r in rows], dtype="int64", name="expense_id")
        frame = _frame(([r[1:] for r in rows], list(EXPENSES.names)), EXPENSES)
        frame.index = ids
        return frame

    def delete_expenses(self, ids: Iterable[int]) -> int:
        """Delete expenses by id; return how many existed."""
        wanted = [int(i) for i in ids]

        def work(conn: Connection) -> int:
            return sum(
                conn.execute(sa.delete(expenses_table).where(expenses_table.c.id.in_(chunk))).rowcount
                for chunk in chunks(wanted)
            )

        return run_in_write_transaction(self.engine, work)

    # ---------------------------------------------------------------- score history

    def append_scores(self, scores: pd.DataFrame, *, scored_at: datetime | None = None) -> int:
        """Record scores of stored leads.

        ``scores`` has ``lead_id``, ``cutoff`` and ``probability``, and optionally ``grade``, ``percentile``,
        ``model_version``, ``reasons_up`` and ``reasons_down`` (lists, kept as JSON). Returns the count.

        Raises
        ------
        UnknownLeadError
            A score is for a lead that is not stored.
        """
        missing = [c for c in ("lead_id", "cutoff", "probability") if c not in scores.columns]
        if missing:
            raise ValueError(f"scores need column(s) {missing}; columns present: {list(scores.columns)}")
        when = pd.Timestamp(scored_at or _now()).tz_convert("UTC").floor("us").to_pydatetime()
        frame = scores.reset_index(drop=True)
        cutoffs = pd.to_datetime(frame["cutoff"], utc=True).dt.floor("us")
        optional = {
            c: frame[c] if c in frame.columns else pd.Series(None, index=frame.index, dtype=object)
            for c in ("grade", "percentile", "model_version", "reasons_up", "reasons_down")
        }
        rows = [
            {
                "lead_id": str(lead_id),
                "scored_at": when,
                "cutoff": cutoff.to_pydatetime(),
                "probability": float(p),
                "grade": native(grade),
                "percentile": native(pct),
                "model_version": None if native(version) is None else str(version),
                "reasons": {"up": _listish(up), "down": _listish(down)},
            }
            for lead_id, cutoff, p, grade, pct, version, up, down in zip(
                frame["lead_id"], cutoffs, frame["probability"], *optional.values(), strict=True
            )
        ]
        if not rows:
            return 0

        def work(conn: Connection) -> int:
            ids = list(dict.fromkeys(r["lead_id"] for r in rows))
            unknown = sorted(set(ids) - set(self._existing(conn, leads_table.c.lead_id, ids)))
            if unknown:
                raise UnknownLeadError(unknown, what="scores")
            conn.execute(sa.insert(score_history_table), rows)
            return len(rows)

        return run_in_write_transaction(self.engine, work)

    def load_score_history(self, lead_id: str, limit: int | None = None) -> pd.DataFrame:
        """A lead's recorded scores, newest first: scored_at, cutoff, probability, grade, percentile,
        model_version, reasons_up, reasons_down."""
        t = score_history_table
        stmt = (
            sa.select(
                t.c.scored_at, t.c.cutoff, t.c.probability, t.c.grade, t.c.percentile, t.c.model_version, t.c.reasons
            )
            .where(t.c.lead_id == lead_id)
            .order_by(t.c.scored_at.desc(), t.c.id.desc())
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        frame = pd.DataFrame(
            [r[:6] for r in rows],
            columns=["scored_at", "cutoff", "probability", "grade", "percentile", "model_version"],
        )
        for col in ("scored_at", "cutoff"):
            frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
        for col in ("probability", "percentile"):
            frame[col] = frame[col].astype("float64")
        for col in ("grade", "model_version"):
            frame[col] = frame[col].astype("str")
        frame["reasons_up"] = [(r[6] or {}).get("up", []) for r in rows]
        frame["reasons_down"] = [(r[6] or {}).get("down", []) for r in rows]
        return frame

    # ---------------------------------------------------------------- latest scores (see leadscore.store.scores)

    def queue_unscored_open_leads(self, now: datetime) -> int:
        """Queue every lead open at ``now`` that has no row in ``lead_scores``; return how many."""
        return run_in_write_transaction(
            self.engine, lambda conn: latest.queue_unscored_open_leads(Bulk.for_connection(conn), now)
        )

    def mark_other_versions_stale(self, version: str) -> int:
        """Mark stale the latest scores given by another model version than ``version``; return how many."""
        return run_in_write_transaction(self.engine, lambda conn: latest.mark_other_versions(conn, version))

    def claim_scores(self, limit: int, *, now: datetime, due_before: datetime) -> list[latest.Claim]:
        """Up to ``limit`` leads whose latest score is stale (or older than ``due_before``) to re-score."""
        with self.engine.connect() as conn:
            return latest.claim(conn, limit, now=now, due_before=due_before)

    def write_scores(
        self,
        scores: pd.DataFrame,
        claims: Sequence[latest.Claim],
        *,
        computed_at: datetime,
        history_change: float = 0.005,
    ) -> dict[str, int]:
        """Store the new latest scores of claimed leads, in one transaction
        (:func:`leadscore.store.scores.write_scores`)."""
        by_lead = {c.lead_id: c for c in claims}
        return run_in_write_transaction(
            self.engine,
            lambda conn: latest.write_scores(
                conn, scores, by_lead, computed_at=computed_at, history_change=history_change
            ),
        )

    def fail_scores(self, claims: Sequence[latest.Claim], reason: str, *, retry_at: datetime) -> None:
        """Keep these leads' last scores, stale with ``reason``, until ``retry_at`` or new data."""
        run_in_write_transaction(self.engine, lambda conn: latest.fail(conn, claims, reason, retry_at=retry_at))

    def latest_score(self, lead_id: str, *, history: int = 0) -> dict[str, Any] | None:
        """One lead's latest score row (None if it has none), with up to ``history`` recorded scores from before
        it (``earlier``, newest first), in one connection."""
        with self.engine.connect() as conn:
            row = latest.read_one(conn, lead_id)
            if row is not None and row["computed_at"] is not None:
                row["earlier"] = latest.recent_history(conn, lead_id, before=row["computed_at"], limit=history)
            return row

    def prioritized_page(
        self,
        *,
        order_by: str = "probability",
        filters: Mapping[str, Any] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, int, list[dict[str, Any]]]:
        """A page of the latest scores, best first; see :func:`leadscore.store.scores.page`."""
        with self.engine.connect() as conn:
            return latest.page(conn, order_by=order_by, filters=filters or {}, limit=limit, offset=offset)

    def kept_scores(self) -> list[dict[str, Any]]:
        """Every kept score (rows of :data:`leadscore.store.scores.ROW_COLUMNS`), by lead id."""
        with self.engine.connect() as conn:
            return latest.all_scored(conn)

    def follow_up_facts(self) -> pd.DataFrame:
        """What the follow-up rule reads of every kept score (:func:`leadscore.store.scores.follow_up_facts`)."""
        with self.engine.connect() as conn:
            return latest.follow_up_facts(conn)

    def write_follow_up(self, changes: Sequence[Mapping[str, Any]]) -> int:
        """Set the follow-up flags of kept rows not re-scored since they were read
        (:func:`leadscore.store.scores.write_follow_up`)."""
        return run_in_write_transaction(self.engine, lambda conn: latest.write_follow_up(conn, changes))

    def scores_changed_since(self, since: datetime) -> list[dict[str, Any]]:
        """The kept scores whose probability or grade changed after ``since``
        (:func:`leadscore.store.scores.changed_since`)."""
        with self.engine.connect() as conn:
            return latest.changed_since(conn, since)

    def median_kept_probability(self) -> float | None:
        """The median probability of the kept scores (None when there are none): one index walk to the middle."""
        t = lead_scores_table
        scored = t.c.probability.is_not(None)
        with self.engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(t).where(scored)).scalar_one()
            if not n:
                return None
            stmt = sa.select(t.c.probability).where(scored).order_by(t.c.probability)
            middle = conn.execute(stmt.limit(2 - n % 2).offset((n - 1) // 2)).scalars().all()
        return float(np.mean(middle))

    def pending_scores(self) -> int:
        """How many leads wait for a (re-)score: stale rows, those waiting for a retry included."""
        t = lead_scores_table
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t).where(sa.text("stale"))).scalar_one())

    def open_lead_ids(self, at: datetime) -> list[str]:
        """The ids of the leads open at ``at``, in order (one column, not the leads)."""
        with self.engine.connect() as conn:
            bulk = Bulk.for_connection(conn)
            sql, params = open_leads_sql(bulk, at)
            return [row[0] for row in bulk.fetch(f"{sql} ORDER BY o.lead_id", params)]


# -------------------------------------------------------------------- helpers


def _with_attribute_texts(leads: pd.DataFrame | None, attributes: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``leads`` with each row's attributes as their stored JSON text (compared as text when deduplicating)."""
    if leads is None or len(leads) != len(attributes):
        raise ValueError(
            f"lead_attributes has {len(attributes)} mappings for {0 if leads is None else len(leads)} leads"
        )
    extras = [c for c in leads.columns if c not in LEADS.names]
    if extras:
        raise ValueError(f"give lead attributes as extra columns or as lead_attributes, not both (columns {extras})")
    return leads.assign(**{ATTRIBUTES_JSON: [attributes_text(dict(a)) for a in attributes]})


def _now() -> datetime:
    return datetime.now(UTC)


def _listish(value: Any) -> list[Any]:
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return []
    return [native(v) for v in list(value)]


def _frame(result: Any, contract: TableContract) -> pd.DataFrame:
    """Rows from a SQLAlchemy result as a frame of ``contract``'s columns, typed as ``validate`` types them."""
    if isinstance(result, tuple):
        rows, columns = result
    else:
        columns = list(result.keys())
        rows = [tuple(r) for r in result.all()]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    out = {}
    for col in contract.columns:
        values = frame[col.name]
        if col.kind == "timestamp":
            out[col.name] = pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
        elif col.kind == "float":
            out[col.name] = pd.to_numeric(values).astype("float64")
        else:
            out[col.name] = values.astype("str")
    return pd.DataFrame(out, index=frame.index)
