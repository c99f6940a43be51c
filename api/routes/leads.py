"""Stored leads: one lead's score with its trend, and the manager's prioritised list of open leads.

Both read the scores the score keeper keeps in the store (:mod:`leadscore.serving.keeper`): the list is a query
(filters, order and page run in the database on indexed columns), one lead's score is a row. A score that is not
current says so (``stale`` and why). With ``as_of`` (a past time) the answer is computed from the stored
histories as of then, a batch of leads at a time; ``LEADSCORE_STORED_SCORES=false`` computes every answer per
request from the whole store, the way before scores were kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from leadscore.api.deps import ModelDep, ReadKey, RepoDep, ScoreKey, SettingsDep
from leadscore.api.errors import error_responses
from leadscore.api.fast_json import json_response
from leadscore.api.open_leads import open_leads_table, require_crm_model
from leadscore.api.payloads import percentile_mode
from leadscore.api.responses import not_scored, score_records
from leadscore.api.schemas import ErrorBody, Timestamp
from leadscore.api.score_schemas import PrioritizedPage, ScoreHistoryItem, ScoreTrend, StoredLeadScore
from leadscore.data.contracts import CrmData
from leadscore.data.records import records
from leadscore.grades import percent
from leadscore.serving.prioritize import features_for, rank
from leadscore.store.scores import FILTERS

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
    # Bounded so that the database's integers hold it (a page past the last lead is simply empty).
    offset: int = Field(0, ge=0, le=2**31 - 1, description="Rows to skip.")
    as_of: Timestamp | None = Field(None, description=AS_OF)


class LeadScoreQuery(BaseModel):
    """When to score the lead as of, and how much history to return."""

    model_config = ConfigDict(extra="forbid")
    as_of: Timestamp | None = Field(None, description=AS_OF)
    history: int = Field(10, ge=0, le=100, description="Earlier scores to return.")
    lang: Literal["en", "es"] = Field("en", description="Language of the reasons: English or Spanish.")


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
    the last touch, whether the lead needs follow-up (no next step, quiet for longer than its usual gap between
    interactions, at most LEADSCORE_FOLLOW_UP_DAYS, and in the upper half by probability) and the top reasons.
    Each item says which model version scored it as of when, and whether the score is stale (new data since, a
    new model since, or a failed re-score) and why. With `as_of` the list is computed for that time (slower;
    reused for LEADSCORE_PRIORITIZED_CACHE_SECONDS). Needs the `read` scope.
    """
    if settings.stored_scores and query.as_of is None:
        require_crm_model(model)
        return _stored_page(repo, model.version, query)
    cutoff, table = open_leads_table(request, repo, model, settings, query.as_of)
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


def _stored_page(repo, version: str, query: PrioritizedQuery) -> PrioritizedPage:
    """A page of the kept scores: filtered, ordered and paginated by the database."""
    total, n_scored, rows = repo.prioritized_page(
        order_by=query.order_by,
        filters={name: getattr(query, name) for name in FILTERS},
        limit=query.limit,
        offset=query.offset,
    )
    percentiles = percent(np.array([row["at_or_below"] for row in rows], dtype=float), max(n_scored, 1))
    items = []
    for position, (row, percentile) in enumerate(zip(rows, percentiles, strict=True), start=query.offset + 1):
        stale, reason = _staleness(row, version)
        items.append({**row, "rank": position, "percentile": float(percentile), "stale": stale, "stale_reason": reason})
    cutoff = min((row["cutoff"] for row in rows), default=datetime.now(UTC))
    return PrioritizedPage(
        model_version=version,
        cutoff=cutoff,
        order_by=query.order_by,
        total=total,
        offset=query.offset,
        limit=query.limit,
        items=items,  # type: ignore[arg-type]
    )


def _staleness(row: dict, version: str) -> tuple[bool, str | None]:
    """Whether a kept score is not current, and why: marked so in the store, or from another model version
    than the one in use (a reload the keeper has not caught up with yet)."""
    if row["stale"]:
        return True, row["stale_reason"]
    if row["model_version"] != version:
        return True, f"scored by model version {row['model_version']}; re-scoring with version {version}"
    return False, None


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
    settings: SettingsDep,
    query: Annotated[LeadScoreQuery, Query()],
) -> StoredLeadScore:
    """A stored lead's score with the trend since its previous score: its kept latest score (saying whether it
    is stale, and why; with `lang=es` the same score, its reasons said in Spanish), or, with `as_of`, its score
    as of that time, computed from its stored history and recorded in it. Needs the `score` scope."""
    scorer = model.scorer
    kept = settings.stored_scores and query.as_of is None
    if kept:
        row = repo.latest_score(lead_id, history=query.history)
        if row is not None and row["probability"] is not None:
            if query.lang != "en":  # the same score, its reasons said in the reader's language
                row |= _reasons_at(scorer, repo, lead_id, row, query.lang)
            return _kept_answer(row, model.version)  # type: ignore[return-value]
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
    scores = scorer.score_features(features, percentile_of=percentile_mode(scorer.card, "reference"), lang=query.lang)
    if scores.empty:
        [why] = not_scored(CrmData(leads=leads, events=events), set(), cutoff)
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"lead {lead_id!r} is not scored: {why.reason}")
    earlier = repo.load_score_history(lead_id, limit=query.history)
    scored_at = datetime.now(UTC)
    if not kept:  # a kept score (not there yet: the keeper is on it) is recorded by the keeper
        repo.append_scores(scores, scored_at=scored_at)
    [record] = score_records(scores)
    return StoredLeadScore(
        **record,
        scored_at=scored_at,
        trend=_trend(float(record["probability"]), earlier),
        history=[ScoreHistoryItem(**row) for row in records(earlier, HISTORY_COLUMNS)],
    )


def _reasons_at(scorer, repo, lead_id: str, row: dict, lang: str) -> dict[str, list[str]]:
    """The kept row's reasons in ``lang``: the lead's contributions as of the row's cutoff, said again (the row
    keeps English words). The row's own when the lead is not scored there (its history changed since)."""
    cutoff = pd.Timestamp(row["cutoff"])
    leads = repo.load_leads([lead_id], attributes=scorer.attributes)
    features, _ = features_for(scorer, leads, repo.load_events([lead_id]), cutoff)
    scores = scorer.score_features(features, percentile_of="reference", lang=lang)
    if scores.empty:
        return {}
    return {"reasons_up": scores["reasons_up"].iloc[0], "reasons_down": scores["reasons_down"].iloc[0]}


def _kept_answer(row: dict, version: str) -> Response:
    """A kept score as the answer, with the trend against the scores recorded before it (the keeper records a
    score in the history when it moves). Written straight to JSON: this is the route a CRM calls per lead."""
    earlier = row["earlier"]
    stale, reason = _staleness(row, version)
    previous = earlier[0] if earlier else None
    if previous is None:
        trend = {"direction": "first score", "change": None, "previous_probability": None, "previous_scored_at": None}
    else:
        change = row["probability"] - previous["probability"]
        trend = {
            "direction": "flat" if abs(change) < FLAT else ("up" if change > 0 else "down"),
            "change": round(change, 6),
            "previous_probability": previous["probability"],
            "previous_scored_at": previous["scored_at"],
        }
    return json_response(
        {
            "lead_id": row["lead_id"],
            "probability": row["probability"],
            "grade": row["grade"],
            "percentile": row["percentile"],
            "reasons_up": row["reasons_up"],
            "reasons_down": row["reasons_down"],
            "model_version": row["model_version"],
            "cutoff": row["cutoff"],
            "provisional": bool(row["provisional"]),
            "scored_at": row["computed_at"],
            "stale": stale,
            "stale_reason": reason,
            "trend": trend,
            "history": earlier,
        }
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
