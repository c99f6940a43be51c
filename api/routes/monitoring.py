"""The model kept honest: stored scores against what happened, and drift from the training data.

Thin routes over :mod:`leadscore.monitoring`: ``GET /monitoring/outcomes`` matches every stored score with its
outcome (per model version and week, reliability by band and grade, AUC, log loss, ECE, scores waiting);
``GET /monitoring/drift`` is the drift report of the model in use for the week that ends at a Monday. The
drift report reads the whole store and builds the features of every open lead: it is kept for
:data:`DRIFT_CACHE_SECONDS` per model version and week.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from leadscore.api.cache import ScoredTableCache
from leadscore.api.deps import ModelHolderDep, ReadKey, RepoDep, SettingsDep
from leadscore.api.errors import error_responses
from leadscore.api.schemas import Timestamp
from leadscore.data.records import to_json
from leadscore.monitoring.drift import drift_report
from leadscore.monitoring.outcomes import outcome_report
from leadscore.monitoring.promises import load_closings, load_history
from leadscore.monitoring.reference import load_reference
from leadscore.monitoring.report import last_monday

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

#: How long a week's drift report is kept (it reads the whole store).
DRIFT_CACHE_SECONDS = 600
ERRORS = error_responses("read", invalid="A parameter the monitor cannot use; `loc` names it.")


class OutcomesQuery(BaseModel):
    """Which scores to judge, as of when (unknown parameters are refused)."""

    model_config = ConfigDict(extra="forbid")
    model_version: str | None = Field(None, max_length=64, description="Only this model version's scores.")
    as_of: Timestamp | None = Field(None, description="Judge with what was known at this moment (default: now).")


class DriftQuery(BaseModel):
    """Which week (unknown parameters are refused)."""

    model_config = ConfigDict(extra="forbid")
    week_end: Timestamp | None = Field(
        None, description="Report the week that ends at the last Monday 00:00 UTC at or before this (default: now)."
    )


class Report(BaseModel):
    """A monitoring report: its tables as lists of rows, and its figures (see the route's description)."""

    model_config = ConfigDict(extra="allow")


def _now(value: datetime | None) -> pd.Timestamp:
    stamp = pd.Timestamp(value or datetime.now(UTC))
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    import orjson

    return orjson.loads(to_json(value))  # NaN as null, timestamps as ISO text


@router.get("/outcomes", response_model=Report, summary="Stored scores against outcomes", responses=ERRORS)
def get_outcomes(
    principal: ReadKey,
    repo: RepoDep,
    settings: SettingsDep,
    holder: ModelHolderDep,
    query: Annotated[OutcomesQuery, Query()],
) -> dict[str, Any]:
    """Every stored score matched with what happened, per model version and week: promises (one per lead and
    week: its last score), resolved, waiting, realised rate against mean predicted, ROC AUC, log loss and ECE,
    and the reliability tables by score band and grade with 95 % intervals. Needs `read`."""
    model = holder.current
    horizon = model.scorer.card.horizon_days if model is not None else settings.horizon_days
    history = load_history(repo.engine, model_version=query.model_version)
    return _plain(outcome_report(history, load_closings(repo.engine), _now(query.as_of), horizon).to_dict())


@router.get(
    "/drift", response_model=Report, summary="Drift of the model in use", responses=error_responses("read", model=True)
)
def get_drift(
    request: Request,
    principal: ReadKey,
    repo: RepoDep,
    settings: SettingsDep,
    holder: ModelHolderDep,
    query: Annotated[DriftQuery, Query()],
) -> dict[str, Any]:
    """The population stability index of every input and of the score, the leads' missing values and unseen
    categories, event types never seen in training and the week's losses per category against the weeks
    before, for the week ending at `week_end` (a Monday); `alert` with the reasons. 503 without a model;
    `alert` is null with a `note` when the version has no training reference. Needs `read`."""
    model = holder.require()
    cutoff = last_monday(_now(query.week_end))

    def build() -> dict[str, Any]:
        reference = load_reference(model.version, settings.mlflow_tracking_uri)
        if reference is None or model.scorer.card.source != "crm":
            note = "no training reference for this version" if reference is None else "a flat-table model"
            return {"cutoff": cutoff.isoformat(), "model_version": model.version, "alert": None, "note": note}
        data = repo.load_crm(attributes=model.scorer.attributes)
        if not (data.leads["created_at"] <= cutoff).any():  # a week before the store's first lead: nothing to judge
            note = "no lead had been created by this week"
            return {"cutoff": cutoff.isoformat(), "model_version": model.version, "alert": None, "note": note}
        return _plain(drift_report(model.scorer, data, reference, cutoff).to_dict())

    cache = getattr(request.app.state, "monitoring_cache", None)
    if cache is None:
        cache = request.app.state.monitoring_cache = ScoredTableCache(DRIFT_CACHE_SECONDS)
    return cache.get(("drift", model.version, cutoff), build)
