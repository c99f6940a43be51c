"""Stateless scoring: ``POST /api/v1/scores`` with lead histories inline, or with precomputed feature rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from fastapi import APIRouter, Response

from leadscore.api.deps import ModelDep, NoQueryParameters, ScoreKey, SettingsDep
from leadscore.api.errors import RequestProblem, error_responses
from leadscore.api.fast_json import OrjsonRoute, json_response
from leadscore.api.payloads import (
    check_batch,
    feature_rows,
    leads_frame,
    no_events,
    percentile_mode,
    scoring_events_frame,
)
from leadscore.api.responses import not_scored, score_records
from leadscore.api.score_schemas import ScoreRequest, ScoreResponse
from leadscore.data.contracts import CrmData
from leadscore.serving.prioritize import features_for

router = APIRouter(tags=["scoring"], route_class=OrjsonRoute, dependencies=[NoQueryParameters])


@router.post(
    "/scores",
    response_model=ScoreResponse,
    summary="Score leads",
    responses=error_responses(
        "score", body=True, model=True, invalid="Some values are wrong, or feature columns are missing."
    ),
)
def post_scores(principal: ScoreKey, body: ScoreRequest, model: ModelDep, settings: SettingsDep) -> Response:
    """Score leads without storing anything: send each lead with its history (`leads` + `events`), or send
    precomputed feature rows (`dataframe_split` / `dataframe_records`, as MLflow's scoring server takes them).

    Returns, per lead open at the cutoff, the probability of converting within the horizon, a grade, a
    percentile, the top reasons up and down, the model version and the cutoff. Needs the `score` scope.
    """
    scorer = model.scorer
    percentile_of = percentile_mode(scorer.card, body.percentile_of)
    cutoff = pd.Timestamp(body.cutoff or datetime.now(UTC))
    if body.leads is not None:
        check_batch("leads", len(body.leads), settings.max_batch_size)
        check_batch("events", len(body.events), settings.max_batch_size * 100)
        if scorer.card.source != "crm":
            raise RequestProblem(
                ["body", "leads"],
                f"model version {model.version} was trained on a flat table: send its feature rows instead",
            )
        events = scoring_events_frame(body.events)
        leads = leads_frame(body.leads, scorer.attributes)  # only the model's attributes are read
        data = CrmData.from_frames(leads, no_events() if events is None else events)
        features, absent = features_for(scorer, data.leads, data.events, cutoff)
        scores = scorer.score_features(features, percentile_of=percentile_of, reasons=body.reasons)
        skipped = not_scored(data, set(scores["lead_id"].astype(str)), cutoff)
    else:
        rows = body.dataframe_split.data if body.dataframe_split is not None else body.dataframe_records or []
        check_batch("rows", len(rows), settings.max_batch_size)
        columns, ids = feature_rows(body, dict(scorer.card.kinds))
        given = cutoff if body.cutoff is not None else None
        scores = scorer.score_columns(columns, ids, cutoff=given, percentile_of=percentile_of, reasons=body.reasons)
        skipped, absent = [], []
    # Written straight to JSON: validating a thousand scores again against ScoreResponse cost as much as scoring
    # them. The body has ScoreResponse's shape (the response model documents it; the tests hold it to it).
    return json_response(
        {
            "model_version": model.version,
            "cutoff": cutoff if body.leads is not None or body.cutoff else None,
            "scores": score_records(scores),
            "not_scored": skipped,
            "missing_attributes": absent,
        }
    )
