"""Bodies of the scoring, prioritised-list and model routes (pydantic v2), with examples for ``/docs``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from leadscore.api.schemas import EventIn, Id, LeadIn, Timestamp

# A feature value: a number, a string, a boolean or null. Checked per column when the rows are typed for the
# model (see api.routes.scores.feature_rows), not value by value here, which costs more than scoring itself.
FeatureValue = Annotated[
    Any, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "null"}]})
]


class ScoringEventIn(EventIn):
    """An event of a lead's history, sent to be scored (not stored); ``event_id`` is optional here."""

    event_id: Id | None = Field(None, description="Optional when scoring: events are not stored.")  # type: ignore[assignment]


class DataFrameSplit(BaseModel):
    """Feature rows as columns and rows of values, as MLflow's scoring server takes them."""

    model_config = ConfigDict(extra="forbid")
    columns: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=2000, description="Column names (features, lead_id)."
    )
    data: list[list[FeatureValue]] = Field(description="One list of values per row, in the order of `columns`.")

    @model_validator(mode="after")
    def _rows_match_columns(self) -> DataFrameSplit:
        width = len(self.columns)
        if set(map(len, self.data)) - {width}:
            bad = [i for i, row in enumerate(self.data) if len(row) != width]
            raise ValueError(f"rows {bad[:10]} do not have {width} values, one per column")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("column names must be unique")
        return self


class ScoreRequest(BaseModel):
    """Leads to score: either with their histories (``leads`` and ``events``), or as precomputed feature rows
    (``dataframe_split`` or ``dataframe_records``, as MLflow's scoring server takes them)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "leads": [{"lead_id": "L-1042", "created_at": "2024-03-01T09:30:00Z", "source": "web"}],
                    "events": [
                        {"lead_id": "L-1042", "at": "2024-03-04T15:02:00Z", "type": "call", "duration_s": 420},
                        {"lead_id": "L-1042", "at": "2024-03-05T10:00:00Z", "type": "email_replied"},
                    ],
                    "cutoff": "2024-03-06T00:00:00Z",
                },
                {"dataframe_records": [{"lead_id": "L-1042", "calls_total": 3, "stage": "proposal"}]},
            ]
        },
    )
    leads: list[LeadIn] | None = Field(None, description="Leads with their histories in `events`.")
    events: list[ScoringEventIn] = Field(default_factory=list, description="The histories of `leads`.")
    dataframe_split: DataFrameSplit | None = Field(None, description="Precomputed feature rows, column-wise.")
    dataframe_records: list[dict[Annotated[str, Field(max_length=200)], FeatureValue]] | None = Field(
        None, description="Precomputed feature rows, one object per row."
    )
    cutoff: Timestamp | None = Field(None, description="Score as of this time (default: now).")
    percentile_of: Literal["reference", "batch"] = Field(
        "reference",
        description="Percentile within the scores the model was validated on (`reference`), or among the leads "
        "of this request (`batch`).",
    )
    reasons: bool = Field(
        True,
        description="`false` leaves `reasons_up` and `reasons_down` empty: for bulk scoring that only needs the "
        "probabilities (about twice as fast).",
    )

    @model_validator(mode="after")
    def _one_input(self) -> ScoreRequest:
        given = [self.leads is not None, self.dataframe_split is not None, self.dataframe_records is not None]
        if sum(given) != 1:
            raise ValueError("send exactly one of: leads (with events), dataframe_split, dataframe_records")
        if self.events and self.leads is None:
            raise ValueError("events are the histories of leads: send them with `leads`")
        return self


class LeadScore(BaseModel):
    """A lead's score: the probability of converting within the horizon, and why."""

    lead_id: str
    probability: float = Field(description="Calibrated probability of converting within the horizon.")
    grade: str = Field(description="A (best) to D, from probability floors.")
    percentile: float | None = Field(description="0-100; see `percentile_of`.")
    reasons_up: list[str] = Field(description="What raises the probability most, in words.")
    reasons_down: list[str] = Field(description="What lowers it most, in words.")
    model_version: str
    cutoff: datetime | None = Field(description="The point in time the lead was scored as of.")
    provisional: bool = Field(description="True when the model is a cold-start model.")


class NotScored(BaseModel):
    lead_id: str
    reason: str


class ScoreResponse(BaseModel):
    """Scores, one per lead that is open at the cutoff, best first in request order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_version": "3",
                    "cutoff": "2024-03-06T00:00:00Z",
                    "scores": [
                        {
                            "lead_id": "L-1042",
                            "probability": 0.31,
                            "grade": "B",
                            "percentile": 88.0,
                            "reasons_up": ["1 email replied in the last 30 days"],
                            "reasons_down": ["no meeting scheduled"],
                            "model_version": "3",
                            "cutoff": "2024-03-06T00:00:00Z",
                            "provisional": False,
                        }
                    ],
                    "not_scored": [],
                    "missing_attributes": ["company_size"],
                }
            ]
        }
    )
    model_version: str
    cutoff: datetime | None
    scores: list[LeadScore]
    not_scored: list[NotScored] = Field(description="Leads not open at the cutoff (closed, or created later).")
    missing_attributes: list[str] = Field(
        default_factory=list,
        description="Lead attributes the model uses that no lead of the request carried: scored as unknown.",
    )


class ScoreHistoryItem(BaseModel):
    scored_at: datetime
    cutoff: datetime
    probability: float
    grade: str | None
    percentile: float | None
    model_version: str | None


class ScoreTrend(BaseModel):
    """How the probability moved since the lead was last scored."""

    direction: Literal["up", "down", "flat", "first score"]
    change: float | None = Field(description="Probability now minus the previous one.")
    previous_probability: float | None
    previous_scored_at: datetime | None


STALE = "True when this is not the lead's current score: new data came in since (re-scoring is queued), the "
STALE += "model changed since, or re-scoring failed. `stale_reason` says which."


class StoredLeadScore(LeadScore):
    """A stored lead's score, with the trend since the previous score: its kept latest score (as of its cutoff),
    or, with `as_of`, a score computed for that time and recorded in its history."""

    scored_at: datetime = Field(description="When the score was computed.")
    stale: bool = Field(False, description=STALE)
    stale_reason: str | None = Field(None, description="Why the score is stale (none when current).")
    trend: ScoreTrend
    history: list[ScoreHistoryItem] = Field(description="Earlier scores, newest first.")


class PrioritizedLead(BaseModel):
    """One open lead of the manager's list."""

    rank: int = Field(description="1 = the most promising lead of the (filtered) list.")
    lead_id: str
    probability: float
    expected_value: float | None = Field(description="Probability times the deal amount (none without one).")
    grade: str
    percentile: float | None = Field(description="Among all open leads.")
    owner_id: str | None
    source: str | None
    stage: str | None
    deal_amount: float | None
    relationship_start: datetime
    last_interaction: datetime | None
    next_scheduled: datetime | None
    days_since_last_touch: float
    needs_follow_up: bool = Field(
        description="No next step scheduled, quiet for longer than `cadence_days`, and in the upper half of the "
        "open leads by probability: the leads a manager would chase today."
    )
    cadence_days: float = Field(
        description="The lead's usual gap between interactions (else its stage's), at most "
        "LEADSCORE_FOLLOW_UP_DAYS: quiet for longer than this counts as overdue."
    )
    reasons_up: list[str]
    reasons_down: list[str]
    model_version: str | None = Field(None, description="The model version that gave this score.")
    cutoff: datetime | None = Field(None, description="The point in time this lead was scored as of.")
    stale: bool = Field(False, description=STALE)
    stale_reason: str | None = Field(None, description="Why the score is stale (none when current).")


class PrioritizedPage(BaseModel):
    """A page of the open leads, ranked."""

    model_version: str
    cutoff: datetime = Field(description="The oldest cutoff of the page's scores (each item has its own).")
    order_by: str
    total: int = Field(description="Open leads matching the filters.")
    offset: int
    limit: int
    items: list[PrioritizedLead]


class FeatureInfo(BaseModel):
    name: str
    kind: str


class ModelInfo(BaseModel):
    """The model in use."""

    version: str
    alias: str
    loaded_at: datetime
    trained_at: datetime | None
    run_id: str | None
    source: str = Field(description="'crm' (scores leads from their histories) or 'table' (feature rows).")
    chosen: str = Field(description="The candidate model chosen at training.")
    calibration: str
    horizon_days: float
    cold_start: bool
    catalogue_version: str | None
    metrics: dict[str, float] = Field(description="Validation metrics of the chosen candidate.")
    features: list[FeatureInfo]


class ReloadResult(BaseModel):
    changed: bool
    previous_version: str | None
    version: str | None
    detail: str
