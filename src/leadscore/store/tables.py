"""The store's tables, as SQLAlchemy 2 declarative models.

They mirror the data contracts (:mod:`leadscore.data.contracts`): one row per lead (extra lead columns in a JSON
``attributes`` column), per event, per goal and per expense, plus the history of scores given to stored leads and
the latest score of each open lead (kept fresh by :mod:`leadscore.serving.keeper`).
Timestamps are stored in UTC: ``timestamp with time zone`` on PostgreSQL, naive UTC text on SQLite.

The schema itself is created and changed only by the Alembic migrations in ``store/migrations``; these models
must match them (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSON on SQLite, JSONB on PostgreSQL.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
#: 64-bit surrogate keys on PostgreSQL; SQLite's INTEGER PRIMARY KEY (the rowid) there.
BigIntKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    Binds accept aware ``datetime`` (or ``pandas.Timestamp``) values and refuse naive ones, so nothing is stored
    in an unknown zone; results come back aware, in UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None:
            raise ValueError(f"naive timestamp {value!r}: timestamps must carry a timezone (UTC)")
        value = value.astimezone(UTC)
        if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
            value = value.to_pydatetime()
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Lead(Base):
    """A lead: the relationship with a prospect, owned by a salesperson."""

    __tablename__ = "leads"
    __table_args__ = (sa.Index("ix_leads_created_at", "created_at"),)

    lead_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    created_at: Mapped[datetime]
    owner_id: Mapped[str | None] = mapped_column(sa.String, index=True)
    source: Mapped[str | None] = mapped_column(sa.String, index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


#: The events the funnel reads (the condition of the partial index ``ix_events_funnel``, written as queries
#: must repeat it for SQLite to use the index).
FUNNEL_CONDITION = "type IN ('stage_changed', 'won', 'lost')"


class Event(Base):
    """Something that happened to a lead (an email, a call, a meeting, a stage change, a win, a loss, ...)."""

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_lead_id_at", "lead_id", "at"),
        sa.Index("ix_events_at", "at"),
        # Closing events only: "is this lead open at t" is one probe (see leadscore.store.reads.open_leads_sql).
        sa.Index(
            "ix_events_closing",
            "lead_id",
            "at",
            sqlite_where=sa.text("type IN ('won', 'lost')"),
            postgresql_where=sa.text("type IN ('won', 'lost')"),
        ),
        # Closings by time, for "first closings in a window" (deals won and lost in a period) from the index alone.
        sa.Index(
            "ix_events_closing_at",
            "at",
            "lead_id",
            "event_id",
            "amount",
            "rep_id",
            sqlite_where=sa.text("type IN ('won', 'lost')"),
            postgresql_where=sa.text("type IN ('won', 'lost')"),
        ),
        # What the funnel reads of a cohort's leads: their stage changes and closings, from the index alone.
        sa.Index(
            "ix_events_funnel",
            "lead_id",
            "at",
            "event_id",
            "type",
            "stage",
            "amount",
            sqlite_where=sa.text(FUNNEL_CONDITION),
            postgresql_where=sa.text(FUNNEL_CONDITION),
        ),
    )

    event_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    lead_id: Mapped[str] = mapped_column(sa.ForeignKey("leads.lead_id"))
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(sa.String)
    rep_id: Mapped[str | None] = mapped_column(sa.String)
    duration_s: Mapped[float | None] = mapped_column(sa.Float)
    scheduled_for: Mapped[datetime | None]
    stage: Mapped[str | None] = mapped_column(sa.String)
    amount: Mapped[float | None] = mapped_column(sa.Float)
    subtype: Mapped[str | None] = mapped_column(sa.String)
    ingested_at: Mapped[datetime]


class Goal(Base):
    """A target for a metric per period, for the team or one salesperson, from a start date."""

    __tablename__ = "goals"
    __table_args__ = (sa.UniqueConstraint("metric", "period", "scope", "start"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    metric: Mapped[str] = mapped_column(sa.String)
    period: Mapped[str] = mapped_column(sa.String)
    target: Mapped[float] = mapped_column(sa.Float)
    start: Mapped[datetime]
    scope: Mapped[str] = mapped_column(sa.String)
    updated_at: Mapped[datetime]


class Expense(Base):
    """Money spent, optionally attributed to a salesperson or a campaign."""

    __tablename__ = "expenses"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    amount: Mapped[float] = mapped_column(sa.Float)
    rep_id: Mapped[str | None] = mapped_column(sa.String)
    campaign: Mapped[str | None] = mapped_column(sa.String)
    category: Mapped[str | None] = mapped_column(sa.String)


class ScoreRecord(Base):
    """A score given to a stored lead: what the model said, when, as of which cutoff."""

    __tablename__ = "score_history"
    __table_args__ = (sa.Index("ix_score_history_lead_id_scored_at", "lead_id", "scored_at"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(sa.ForeignKey("leads.lead_id"))
    scored_at: Mapped[datetime]
    cutoff: Mapped[datetime]
    probability: Mapped[float] = mapped_column(sa.Float)
    grade: Mapped[str | None] = mapped_column(sa.String)
    percentile: Mapped[float | None] = mapped_column(sa.Float)
    model_version: Mapped[str | None] = mapped_column(sa.String)
    reasons: Mapped[dict[str, Any] | None]


class EventDay(Base):
    """The read model of activity: events counted per UTC day, type and the salesperson they count for.

    ``rep_id`` is the event's own rep, else its lead's owner (None: no one). Maintained on every ingest by
    :mod:`leadscore.store.read_model` (a touched day is recounted from its events), so summing rows over whole
    days equals counting the events.
    """

    __tablename__ = "event_days"
    __table_args__ = (sa.Index("ix_event_days_day", "day"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    day: Mapped[datetime]
    type: Mapped[str] = mapped_column(sa.String)
    rep_id: Mapped[str | None] = mapped_column(sa.String)
    events: Mapped[int] = mapped_column(sa.BigInteger)
    cold_calls: Mapped[int] = mapped_column(sa.BigInteger)
    timed_calls: Mapped[int] = mapped_column(sa.BigInteger)
    call_seconds: Mapped[float] = mapped_column(sa.Float)


class LeadFirstTouch(Base):
    """Each lead's first outbound event (email sent, call, meeting scheduled or held): its first response.

    Events are only ever added, so the first touch only moves earlier; kept on ingest by
    :mod:`leadscore.store.read_model`.
    """

    __tablename__ = "lead_first_touch"

    lead_id: Mapped[str] = mapped_column(sa.ForeignKey("leads.lead_id"), primary_key=True)
    at: Mapped[datetime]


class LeadStageStay(Base):
    """The read model of the funnel: one row per stay of a lead in a stage (the stage's rank, when the lead
    entered it and when it left: its next stage change or its first closing; ``left_us`` None while it is there),
    and one for its first closing (``stage_rank`` -1 won, -2 lost, at ``entered_us``, with its ``amount``).

    Times are epoch microseconds (exact on both databases, so durations are the pandas path's to the
    microsecond). Every row carries its lead's creation (``created_us``), so a cohort's rows are one range of
    ``ix_lead_stage_stays_cohort``. A lead's rows are recomputed from its lead row and its stage changes and
    closings whenever an ingest touches them (:mod:`leadscore.store.read_model`): they cannot drift from them.
    """

    __tablename__ = "lead_stage_stays"
    __table_args__ = (
        sa.Index("ix_lead_stage_stays_lead_id", "lead_id"),
        sa.Index(
            "ix_lead_stage_stays_cohort", "created_us", "lead_id", "stage_rank", "entered_us", "left_us", "amount"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(sa.ForeignKey("leads.lead_id"))
    created_us: Mapped[int] = mapped_column(sa.BigInteger)
    stage_rank: Mapped[int] = mapped_column(sa.SmallInteger)
    entered_us: Mapped[int] = mapped_column(sa.BigInteger)
    left_us: Mapped[int | None] = mapped_column(sa.BigInteger)
    amount: Mapped[float | None] = mapped_column(sa.Float)


class LatestScore(Base):
    """The latest score of an open lead, with what the prioritised list shows and whether it is still current.

    A row is written by the score keeper (:mod:`leadscore.serving.keeper`) and marked ``stale`` by whatever makes
    it out of date: new events or lead changes (in the ingesting transaction, ``changes`` counts them), a new
    champion, a failed re-score (``retry_at``). A row without a probability is a lead not scored yet. The
    indexes serve the list's filters and orders; ``expected_value_order`` is the expected value with
    ``-infinity`` for none, so one ascending index puts leads without a deal amount last on both databases.
    """

    __tablename__ = "lead_scores"
    __table_args__ = (
        sa.Index("ix_lead_scores_probability", "probability", "lead_id"),
        sa.Index("ix_lead_scores_expected_value_order", "expected_value_order", "lead_id"),
        sa.Index("ix_lead_scores_owner_id", "owner_id", "probability"),
        sa.Index("ix_lead_scores_stage", "stage", "probability"),
        sa.Index("ix_lead_scores_grade", "grade", "probability"),
        sa.Index("ix_lead_scores_source", "source", "probability"),
        sa.Index("ix_lead_scores_needs_follow_up", "needs_follow_up", "probability"),
        sa.Index("ix_lead_scores_cutoff", "cutoff"),
        sa.Index("ix_lead_scores_changed_at", "changed_at"),
        # The keeper's queue: only the stale rows (a few, usually) are in it.
        sa.Index("ix_lead_scores_stale", "lead_id", sqlite_where=sa.text("stale"), postgresql_where=sa.text("stale")),
    )

    lead_id: Mapped[str] = mapped_column(sa.ForeignKey("leads.lead_id"), primary_key=True)
    model_version: Mapped[str | None] = mapped_column(sa.String)
    cutoff: Mapped[datetime | None]
    probability: Mapped[float | None] = mapped_column(sa.Float)
    grade: Mapped[str | None] = mapped_column(sa.String)
    percentile: Mapped[float | None] = mapped_column(sa.Float)
    expected_value: Mapped[float | None] = mapped_column(sa.Float)
    expected_value_order: Mapped[float | None] = mapped_column(sa.Float)
    provisional: Mapped[bool | None] = mapped_column(sa.Boolean)
    reasons: Mapped[dict[str, Any] | None]
    owner_id: Mapped[str | None] = mapped_column(sa.String)
    source: Mapped[str | None] = mapped_column(sa.String)
    stage: Mapped[str | None] = mapped_column(sa.String)
    deal_amount: Mapped[float | None] = mapped_column(sa.Float)
    relationship_start: Mapped[datetime | None]
    last_interaction: Mapped[datetime | None]
    next_scheduled: Mapped[datetime | None]
    days_since_last_touch: Mapped[float | None] = mapped_column(sa.Float)
    needs_follow_up: Mapped[bool | None] = mapped_column(sa.Boolean)
    cadence_days: Mapped[float | None] = mapped_column(sa.Float)
    #: The lead's own cadence (None: too few interactions), from which the keeper re-derives the follow-up flag
    #: with the store-wide usual gap of each stage.
    own_cadence_days: Mapped[float | None] = mapped_column(sa.Float)
    stale: Mapped[bool] = mapped_column(sa.Boolean)
    stale_reason: Mapped[str | None] = mapped_column(sa.String)
    changes: Mapped[int] = mapped_column(sa.Integer)
    retry_at: Mapped[datetime | None]
    computed_at: Mapped[datetime | None]
    #: When the probability or the grade last changed (a re-score giving the same ones leaves it): what
    #: ``leadscore score --changed-since`` writes back to a CRM.
    changed_at: Mapped[datetime | None]


leads_table: sa.Table = Lead.__table__  # type: ignore[assignment]
events_table: sa.Table = Event.__table__  # type: ignore[assignment]
goals_table: sa.Table = Goal.__table__  # type: ignore[assignment]
expenses_table: sa.Table = Expense.__table__  # type: ignore[assignment]
score_history_table: sa.Table = ScoreRecord.__table__  # type: ignore[assignment]
event_days_table: sa.Table = EventDay.__table__  # type: ignore[assignment]
first_touch_table: sa.Table = LeadFirstTouch.__table__  # type: ignore[assignment]
lead_scores_table: sa.Table = LatestScore.__table__  # type: ignore[assignment]
stage_stays_table: sa.Table = LeadStageStay.__table__  # type: ignore[assignment]

#: The event columns that make up an event's content (what a retry must repeat exactly).
EVENT_CONTENT_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "at",
    "type",
    "rep_id",
    "duration_s",
    "scheduled_for",
    "stage",
    "amount",
    "subtype",
)


class JobLease(Base):
    """A lease on a job that one service at a time may run (the scheduled retraining), and its last schedule slot.

    ``holder`` holds the job until ``expires_at`` (renewed while it works, so a crashed holder frees it when the
    lease runs out); ``done_slot`` is the schedule slot the job last completed, so a second service never runs the
    same slot again. Written by :mod:`leadscore.retraining.lock` with single conditional UPDATEs.
    """

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(sa.String, primary_key=True)
    holder: Mapped[str | None] = mapped_column(sa.String)
    acquired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    done_slot: Mapped[str | None] = mapped_column(sa.String)
    done_at: Mapped[datetime | None]
    outcome: Mapped[dict[str, Any] | None]


job_leases_table: sa.Table = JobLease.__table__  # type: ignore[assignment]


class WebhookSubscription(Base):
    """Where to send which events: a URL, the secret its payloads are signed with, the event kinds it wants."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(sa.String)
    secret: Mapped[str] = mapped_column(sa.String)
    kinds: Mapped[list[str]] = mapped_column(JSONType)  # the event kinds it wants
    description: Mapped[str | None] = mapped_column(sa.String)
    active: Mapped[bool] = mapped_column(sa.Boolean)
    created_at: Mapped[datetime]


class WebhookEvent(Base):
    """An event in the outbox, written in the transaction of the change it reports (:mod:`leadscore.store.outbox`).

    ``id`` orders the events; ``ordering_key`` (a lead, a goal, the model) names the events that must reach a
    subscriber in order; ``dedupe_key`` (unique, optional) keeps a fact that several processes notice from being
    announced twice.
    """

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(sa.String, unique=True)
    kind: Mapped[str] = mapped_column(sa.String)
    lead_id: Mapped[str | None] = mapped_column(sa.String)
    ordering_key: Mapped[str] = mapped_column(sa.String)
    payload: Mapped[dict[str, Any]]
    dedupe_key: Mapped[str | None] = mapped_column(sa.String, unique=True)
    created_at: Mapped[datetime]


#: The condition of the delivery queue's partial indexes (repeated as is by the queries, so SQLite uses them).
PENDING_DELIVERY = "status = 'pending'"


class WebhookDelivery(Base):
    """One event to one subscriber: its state (pending, delivered, dead), schedule and log.

    A worker claims a due row by leasing it (``claimed_by``, ``lease_until``) and counting the attempt; the
    outcome sets ``response_code``, ``last_error`` and either ``delivered_at`` or the next attempt; a lease that
    runs out (a worker killed mid-delivery) makes the row claimable again.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            "id",
            sqlite_where=sa.text(PENDING_DELIVERY),
            postgresql_where=sa.text(PENDING_DELIVERY),
        ),
        # "Is an earlier event of this lead still pending for this subscriber?": one probe.
        sa.Index(
            "ix_webhook_deliveries_order",
            "subscription_id",
            "ordering_key",
            "id",
            sqlite_where=sa.text(PENDING_DELIVERY),
            postgresql_where=sa.text(PENDING_DELIVERY),
        ),
        sa.Index("ix_webhook_deliveries_subscription_id", "subscription_id", "id"),
        sa.Index("ix_webhook_deliveries_outbox_id", "outbox_id"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("webhook_outbox.id"))
    subscription_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("webhook_subscriptions.id"))
    ordering_key: Mapped[str] = mapped_column(sa.String)
    status: Mapped[str] = mapped_column(sa.String)
    attempts: Mapped[int] = mapped_column(sa.Integer)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(sa.String)
    lease_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    response_code: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.String)
    created_at: Mapped[datetime]


webhook_subscriptions_table: sa.Table = WebhookSubscription.__table__  # type: ignore[assignment]
webhook_outbox_table: sa.Table = WebhookEvent.__table__  # type: ignore[assignment]
webhook_deliveries_table: sa.Table = WebhookDelivery.__table__  # type: ignore[assignment]
