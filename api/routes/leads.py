"""Stored leads: one lead's score with its trend, and the manager's prioritised list of open leads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from leadscore.api.deps import ModelDep, ReadKey, RepoDep, ScoreKey, SettingsDep
from leadscore.api.errors import error_responses
from leadscore.api.payloads import percentile_mode
from leadscore.api.responses import not_scored, score_records
from leadscore.api.schemas import ErrorBody, Timestamp
from leadscore.api.score_schemas import PrioritizedPage, ScoreHistoryItem, ScoreTrend, StoredLeadScore
from leadscore.data.contracts import CrmData
from leadscore.data.records import records
from leadscore.serving.prioritize import features_for, rank, score_open_leads

router = APIRouter(prefix="/leads", tags=["leads"])

#: A change smaller than this (in probability) is "flat".
FLAT = 0.005

HISTORY_COLUMNS = ["scored_at", "cutoff", "probability", "grade", "percentile", "model_version"]

AS_OF = "Score as of this time (ISO 8601; UTC if no offset; default: now)."


class PrioritizedQuery(BaseModel):
    """Filters, order and page of the prioritised list (unknown parameters are refused, so a typo in a filter
    never returns the unfiltered list)."""

    model_config = ConfigDict(extra="forbid")
    order_by: Literal["probability", "expected_value"] = Field(
        "probability", description="Rank by probability, or by expected value (probability times deal amount)."
    )
    owner: str | None = Field(None, max_length=200, description="Only this salesperson's leads.")
    stage: str | None = Field(None, max_length=200, description="Only leads in this stage.")
    grade: str | None = Field(None, max_length=10, description="Only leads with this grade.")
    source: str | None = Field(None, max_length=200, description="Only leads from this source.")
    needs_follow_up: bool | None = Field(None, description="Only leads that do (or do not) need follow-up.")
    limit: int = Field(50, ge=1, le=1000, description="Page size.")
    offset: int = Field(0, ge=0, description="Rows to skip.")
    as_of: Timestamp | None = Field(None, description=AS_OF)


class LeadScoreQuery(BaseModel):
    """When to score the lead as of, and how much history to return."""

    model_config = ConfigDict(extra="forbid")
    as_of: Timestamp | None = Field(None, description=AS_OF)
    history: int = Field(10, ge=0, le=100, description="Earlier scores to return.")


@router.get(
    "/prioritized",
    response_model=PrioritizedPage,
    summary="The manager's list of open leads",
    responses=error_responses(
        "read", model=True, more={409: (ErrorBody, "The model scores flat tables, not stored leads.")}
    ),
)
def get_prioritized(
    principal: ReadKey,
    request: Request,
    repo: RepoDep,
    model: ModelDep,
    settings: SettingsDep,
    query: Annotated[PrioritizedQuery, Query()],
) -> PrioritizedPage:
    """Open leads ranked by probability of converting or by expected value, filterable and paginated.

    Each row says when the relationship started, the last interaction, the next scheduled one, the days since
    the last touch, whether the lead needs follow-up (nothing scheduled, or untouched for
    LEADSCORE_FOLLOW_UP_DAYS) and the top reasons. The scored list is reused for a short while
    (LEADSCORE_PRIORITIZED_CACHE_SECONDS) and rebuilt after ingestion. Needs the `read` scope.
    """
    scorer = model.scorer
    if scorer.card.source != "crm":
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"model version {model.version} scores flat tables, not stored leads"
        )

    def build() -> tuple[pd.Timestamp, pd.DataFrame]:
        cutoff = pd.Timestamp(query.as_of or datetime.now(UTC))
        data = repo.load_crm(open_at=cutoff.to_pydatetime(), attributes=scorer.attributes)
        return cutoff, score_open_leads(scorer, data, cutoff, settings.follow_up_days)

    cutoff, table = request.app.state.scored_cache.get((model.version, query.as_of), build)
    ranked = rank(
        table,
        by=query.order_by,
        owner=query.owner,
        stage=query.stage,
        grade=query.grade,
        source=query.source,
        needs_follow_up=query.needs_follow_up,
    )
    page = ranked.iloc[query.offset : query.offset + query.limit].copy()
    page.insert(0, "rank", range(query.offset + 1, query.offset + 1 + len(page)))
    items = records(page)
    return PrioritizedPage(
        model_version=model.version,
        cutoff=cutoff,
        order_by=query.order_by,
        total=len(ranked),
        offset=query.offset,
        limit=query.limit,
        items=items,  # type: ignore[arg-type]
    )


@router.get(
    "/{lead_id}/score",
    response_model=StoredLeadScore,
    summary="Score a stored lead",
    responses=error_responses(
        "score",
        model=True,
        more={
            404: (ErrorBody, "No such lead in the store."),
            409: (ErrorBody, "The lead is not open at that time (closed, or created later)."),
        },
    ),
)
def get_lead_score(
    lead_id: Annotated[str, Path(min_length=1, max_length=200, description="The lead's id.")],
    principal: ScoreKey,
    repo: RepoDep,
    model: ModelDep,
    query: Annotated[LeadScoreQuery, Query()],
) -> StoredLeadScore:
    """Score a stored lead from its stored history (as of now, or `as_of`), record the score in the lead's
    history and return it with the trend since the previous score. Needs the `score` scope."""
    scorer = model.scorer
    leads = repo.load_leads([lead_id], attributes=scorer.attributes)
    if leads.empty:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no lead {lead_id!r} in the store")
    if scorer.card.source != "crm":
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"model version {model.version} scores flat tables, not stored leads"
        )
    events = repo.load_events([lead_id])
    cutoff = pd.Timestamp(query.as_of or datetime.now(UTC))
    features, _ = features_for(scorer, leads, events, cutoff)
    scores = scorer.score_features(features, percentile_of=percentile_mode(scorer.card, "reference"))
    if scores.empty:
        [why] = not_scored(CrmData(leads=leads, events=events), set(), cutoff)
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"lead {lead_id!r} is not scored: {why.reason}")
    earlier = repo.load_score_history(lead_id, limit=query.history)
    scored_at = datetime.now(UTC)
    repo.append_scores(scores, scored_at=scored_at)
    [record] = score_records(scores)
    return StoredLeadScore(
        **record,
        scored_at=scored_at,
        trend=_trend(float(record["probability"]), earlier),
        history=[ScoreHistoryItem(**row) for row in records(earlier, HISTORY_COLUMNS)],
    )


def _trend(probability: float, earlier: pd.DataFrame) -> ScoreTrend:
    if earlier.empty:
        return ScoreTrend(direction="first score", change=None, previous_probability=None, previous_scored_at=None)
    previous = earlier.iloc[0]
    change = probability - float(previous["probability"])
    direction = "flat" if abs(change) < FLAT else ("up" if change > 0 else "down")
    return ScoreTrend(
        direction=direction,
        change=round(change, 6),
        previous_probability=float(previous["probability"]),
        previous_scored_at=previous["scored_at"],
    )
