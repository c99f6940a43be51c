"""The model in use: what it is, and picking up a new champion without a restart."""

from __future__ import annotations

from fastapi import APIRouter, Request

from leadscore.api.deps import ModelDep, ModelHolderDep, NoQueryParameters, ReadKey, ScoreKey
from leadscore.api.errors import error_responses
from leadscore.api.score_schemas import FeatureInfo, ModelInfo, ReloadResult

router = APIRouter(prefix="/model", tags=["model"], dependencies=[NoQueryParameters])


@router.get("", response_model=ModelInfo, summary="The model in use", responses=error_responses("read", model=True))
def get_model(principal: ReadKey, model: ModelDep) -> ModelInfo:
    """The version in use, when it was trained, its validation metrics and its features. Needs `read`."""
    card = model.scorer.card
    return ModelInfo(
        version=model.version,
        alias=model.alias,
        loaded_at=model.loaded_at,
        trained_at=model.trained_at,
        run_id=model.run_id,
        source=card.source,
        chosen=card.chosen,
        calibration=card.calibration,
        horizon_days=card.horizon_days,
        cold_start=card.cold_start,
        catalogue_version=card.catalogue_version,
        metrics=model.metrics,
        features=[FeatureInfo(name=name, kind=card.kinds.get(name, "")) for name in model.scorer.features],
    )


@router.post(
    "/reload",
    response_model=ReloadResult,
    summary="Pick up the current champion",
    responses=error_responses("score", model=True),
)
def reload_model(principal: ScoreKey, holder: ModelHolderDep, request: Request) -> ReloadResult:
    """Look up the alias (`champion`) now and load its version if it moved; requests in flight finish with the
    model they started with. The service also checks by itself every LEADSCORE_MODEL_POLL_SECONDS. Needs
    `score`. Answers 503 (saying why) when there is still no model to use. A new version re-scores every open
    lead's kept score in the background, in batches; until then those scores say they are from the old one."""
    outcome = holder.reload()
    keeper = getattr(request.app.state, "score_keeper", None)
    if outcome.changed and keeper is not None:
        keeper.wake()
    holder.require()  # 503 with the reason if there is no model at all
    return ReloadResult(
        changed=outcome.changed,
        previous_version=outcome.previous_version,
        version=outcome.version,
        detail=outcome.detail,
    )
