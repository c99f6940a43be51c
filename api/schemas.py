"""Request and response bodies of the HTTP API (pydantic v2), with the examples shown on ``/docs``.

Field rules here are what a generated client needs to know (types, required fields, ranges); the data contracts
(:mod:`leadscore.data.contracts`) still check every batch as a whole (duplicate keys, unknown leads, ...).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from leadscore.data.contracts import GOAL_METRICS, GOAL_PERIODS, LEADS

# The range pandas' nanosecond timestamps can hold (1677-09-21 to 2262-04-11), in whole years.
_EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
_LATEST = datetime(2262, 1, 1, tzinfo=UTC)


def _storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    if value.isascii():  # constant time in CPython; ASCII always encodes (most ids and names are ASCII)
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def _storable_id(value: str) -> str:
    # An id is text that can be stored and is not blank.
    if not value.strip():
        raise ValueError("must not be blank")
    return _storable_text(value)


_OUT_OF_RANGE = f"timestamp out of range: must be between {_EARLIEST:%Y-%m-%d} and {_LATEST:%Y-%m-%d}"


def _utc(value: datetime) -> datetime:
    out_of_range = _OUT_OF_RANGE  # formatted once: formatting dates cost more than the whole check
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(out_of_range) from None
    if not _EARLIEST <= value <= _LATEST:
        raise ValueError(out_of_range)
    return value


_BARE_NUMBER = re.compile(r"^\s*[-+]?\d+(\.\d*)?\s*$")


def _text_timestamp(value: object) -> object:
    # Only ISO text (or a datetime, from Python): a bare number, even as text (a query parameter), is ambiguous
    # (seconds? milliseconds?), so refuse it rather than guess.
    if isinstance(value, datetime) or (isinstance(value, str) and not _BARE_NUMBER.match(value)):
        return value
    raise ValueError("a timestamp must be an ISO 8601 string, e.g. '2024-03-01T09:30:00Z'")


#: Attributes one lead may carry, and the longest attribute name and text value: what one lead can cost.
MAX_ATTRIBUTES_PER_LEAD = 100
MAX_ATTRIBUTE_NAME = 200
MAX_ATTRIBUTE_TEXT = 2000


def _few_attributes(attributes: object) -> object:
    # Checked before any key or value is validated: a lead with 100,000 keys costs a len(), not 100,000 checks.
    if isinstance(attributes, dict) and len(attributes) > MAX_ATTRIBUTES_PER_LEAD:
        raise ValueError(
            f"{len(attributes)} attributes on one lead; the limit is {MAX_ATTRIBUTES_PER_LEAD} per lead "
            "(the model uses a few of them: send the fields that matter)"
        )
    return attributes


def _not_canonical(attributes: dict[str, object]) -> dict[str, object]:
    # Any other name is stored and used as it is (features name it attr_{name}): these four are the lead's own
    # fields, and one name must not mean two things.
    clash = sorted(set(attributes) & set(LEADS.names))
    if clash:
        raise ValueError(f"attribute name(s) {clash} are lead fields: send them as fields of the lead")
    return attributes


Id = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_storable_id)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_storable_text)]
Text = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_storable_text)]
Timestamp = Annotated[
    datetime,
    BeforeValidator(_text_timestamp),
    AfterValidator(_utc),
    Field(description="ISO 8601 date-time; without an offset it is read as UTC."),
]
# Strict numbers: a JSON number (integer or not), never a boolean or a numeric string.
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
AttributeName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ATTRIBUTE_NAME), AfterValidator(_storable_text)
]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_TEXT), AfterValidator(_storable_text)]
    | Annotated[float, Field(allow_inf_nan=False, strict=True)]
    | bool
    | None
)


GoalMetric = Literal[GOAL_METRICS]  # type: ignore[valid-type]
GoalPeriod = Literal[GOAL_PERIODS]  # type: ignore[valid-type]


class LeadIn(BaseModel):
    """A lead as the CRM knows it. Sent again, it replaces the stored lead."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lead_id": "L-1042",
                    "created_at": "2024-03-01T09:30:00Z",
                    "owner_id": "rep_7",
                    "source": "web",
                    "attributes": {"segment": "SMB", "country": "ES", "company_size": 40},
                }
            ]
        },
    )

    lead_id: Id = Field(description="Unique identifier of the lead in the CRM.")
    created_at: Timestamp = Field(description="When the relationship started (ISO 8601; UTC if no offset).")
    owner_id: Name | None = Field(None, description="The salesperson who owns the lead.")
    source: Name | None = Field(None, description="Where the lead came from (web, referral, event, ...).")
    attributes: Annotated[
        dict[AttributeName, AttributeValue], BeforeValidator(_few_attributes), AfterValidator(_not_canonical)
    ] = Field(
        default_factory=dict,
        description=f"Any other lead fields, by any name but the four above (segment, country, stage, a custom "
        f"field, ...): text, numbers, booleans or null; at most {MAX_ATTRIBUTES_PER_LEAD} per lead, names up to "
        f"{MAX_ATTRIBUTE_NAME} and text up to {MAX_ATTRIBUTE_TEXT} characters. Stored as sent; the model uses a "
        "stated selection of them.",
    )


class EventIn(BaseModel):
    """Something that happened to a lead. ``event_id`` is the idempotency key."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "E-88121",
                    "lead_id": "L-1042",
                    "at": "2024-03-04T15:02:00Z",
                    "type": "call",
                    "rep_id": "rep_7",
                    "duration_s": 420,
                    "subtype": "cold",
                },
                {
                    "event_id": "E-88122",
                    "lead_id": "L-1042",
                    "at": "2024-03-05T10:00:00Z",
                    "type": "meeting_scheduled",
                    "rep_id": "rep_7",
                    "scheduled_for": "2024-03-12T11:00:00Z",
                },
            ]
        },
    )

    event_id: Id = Field(description="Unique id; a retry with the same id and content is a no-op.")
    lead_id: Id = Field(description="The lead the event belongs to (stored, or sent in the same request).")
    at: Timestamp = Field(description="When it happened (ISO 8601; UTC if no offset).")
    type: Name = Field(
        description="email_sent, email_opened, email_replied, call, meeting_scheduled, meeting_held, "
        "meeting_cancelled, meeting_rejected, web_visit, form_submitted, stage_changed, won, lost, or any other."
    )
    rep_id: Name | None = Field(None, description="The salesperson who acted.")
    duration_s: NonNegative | None = Field(None, description="Length of a call or meeting, in seconds.")
    scheduled_for: Timestamp | None = Field(None, description="When a scheduled meeting or call takes place.")
    stage: Name | None = Field(None, description="The new stage of a stage_changed event.")
    amount: NonNegative | None = Field(None, description="Deal value of a won deal or a stage change.")
    subtype: Name | None = Field(None, description="'cold' for a cold call, the reason of a lost deal, ...")


class LeadsIn(BaseModel):
    """A batch of leads to create or replace, stored all or nothing."""

    model_config = ConfigDict(extra="forbid")
    leads: list[LeadIn] = Field(description="The leads; at most LEADSCORE_MAX_BATCH_SIZE of them.")


class EventsIn(BaseModel):
    """A batch of events, stored all or nothing; optionally with the leads they belong to."""

    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(description="The events; at most LEADSCORE_MAX_BATCH_SIZE of them.")
    leads: list[LeadIn] = Field(
        default_factory=list,
        description="Leads the events belong to that may not be stored yet; upserted in the same transaction.",
    )


class GoalIn(BaseModel):
    """A target for a metric per period, for the team or one salesperson."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"metric": "revenue", "period": "month", "target": 50000, "start": "2024-01-01"}]
        },
    )
    metric: GoalMetric = Field(description="What is counted.")
    period: GoalPeriod = Field(description="The period the target is per.")
    target: NonNegative = Field(description="The target per period.")
    start: Timestamp = Field(description="First day the target applies.")
    scope: Name | None = Field(None, description="'team' (the default) or a salesperson's id.")


class GoalsIn(BaseModel):
    """Goals to create or update (key: metric, period, scope, start)."""

    model_config = ConfigDict(extra="forbid")
    goals: list[GoalIn]


class ExpenseIn(BaseModel):
    """Money spent."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"at": "2024-02-01", "amount": 1200.0, "campaign": "spring-webinar", "category": "ads"}]
        },
    )
    at: Timestamp = Field(description="When the money was spent.")
    amount: NonNegative = Field(description="How much was spent.")
    rep_id: Name | None = None
    campaign: Name | None = None
    category: Name | None = Field(None, description="ads, events, tools, travel, ...")


class ExpensesIn(BaseModel):
    """Expenses to record."""

    model_config = ConfigDict(extra="forbid")
    expenses: list[ExpenseIn]


# ------------------------------------------------------------------------------------------- responses


class LeadsIngested(BaseModel):
    """What happened to the leads of a request."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"received": 3, "created": 2, "updated": 1, "unchanged": 0}]}
    )
    received: int = Field(description="Leads in the request.")
    created: int = Field(description="New leads stored.")
    updated: int = Field(description="Stored leads replaced by different content.")
    unchanged: int = Field(description="Stored leads sent again with the same content.")


class EventsIngested(BaseModel):
    """What happened to the events (and leads) of a request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "received": 3,
                    "inserted": 2,
                    "already_stored": 1,
                    "leads": {"received": 0, "created": 0, "updated": 0, "unchanged": 0},
                }
            ]
        }
    )
    received: int = Field(description="Events in the request (exact repeats included).")
    inserted: int = Field(description="New events stored.")
    already_stored: int = Field(description="Events already stored with the same content (retries); no-ops.")
    leads: LeadsIngested


class Stored(BaseModel):
    """How many rows were stored."""

    stored: int


class ExpensesStored(BaseModel):
    """The ids given to the expenses, in request order."""

    ids: list[int]


class ErrorBody(BaseModel):
    """An error: what went wrong and what to do."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "missing API key: send X-API-Key"}]})
    detail: str


class ProblemItem(BaseModel):
    """One problem with the request: where (``loc``, with 0-based list indexes), what (``msg``) and a code."""

    loc: list[str | int] = Field(description='Path to the value, e.g. ["body", "events", 3, "at"].')
    msg: str
    type: str


class ValidationBody(BaseModel):
    """The request was understood but some values are wrong; nothing was stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message": "1 problem(s) in the request; nothing was stored",
                    "detail": [
                        {
                            "loc": ["body", "events", 3, "lead_id"],
                            "msg": "event for an unknown lead (not in this request and not in the store): ['L-9']",
                            "type": "contract",
                        }
                    ],
                }
            ]
        }
    )
    message: str
    detail: list[ProblemItem]


class ConflictItem(BaseModel):
    """An event id already stored with other content."""

    event_id: str
    fields: list[str] = Field(description="The fields whose values differ from the stored event.")


class ConflictBody(BaseModel):
    """Some event ids are already stored with other content; nothing of the request was stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "1 event id(s) already stored with different content: 'E-1' (differs in type).",
                    "conflicts": [{"event_id": "E-1", "fields": ["type"]}],
                }
            ]
        }
    )
    detail: str
    conflicts: list[ConflictItem]


class DatabaseStatus(BaseModel):
    ok: bool
    detail: str
    revision: str | None = None


class ModelStatus(BaseModel):
    loaded: bool
    detail: str
    version: str | None = None


class Readiness(BaseModel):
    """Whether the service can take traffic: the database is reachable, and the model status."""

    status: str = Field(description="'ready' or 'not ready'.")
    database: DatabaseStatus
    model: ModelStatus


class Liveness(BaseModel):
    status: str = "ok"
