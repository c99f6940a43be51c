"""The model page: which version scores, when it was trained, how it does on the latest known period, its stored
scores against outcomes week by week, and the promotion gate's decisions.

The version and its training figures are the API's ``GET /api/v1/model``; the latest period's accuracy is
:func:`leadscore.monitoring.recent.recent_accuracy`, the weekly promises against outcomes
:func:`leadscore.monitoring.outcomes.outcome_report` (as ``GET /api/v1/monitoring/outcomes``) and the gate's
record :func:`leadscore.registry.decisions`, all kept for ``MODEL_PAGE_CACHE_SECONDS`` per model version (they
read the whole store and the registry).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from leadscore import registry
from leadscore.api.deps import ModelHolderDep, RepoDep, SettingsDep
from leadscore.api.web import i18n
from leadscore.api.web.charts import bar_chart, calibration_chart
from leadscore.api.web.render import PREFIX, Lang, Viewer, page
from leadscore.data.records import records
from leadscore.monitoring.outcomes import outcome_report
from leadscore.monitoring.promises import load_closings, load_history
from leadscore.monitoring.recent import recent_accuracy

router = APIRouter(prefix=PREFIX, include_in_schema=False)

MODEL_PAGE_CACHE_SECONDS = 600
#: The latest weeks of promises against outcomes shown.
OUTCOME_WEEKS = 8


@router.get("/model", response_class=HTMLResponse)
def model_page(
    request: Request, viewer: Viewer, lang: Lang, repo: RepoDep, holder: ModelHolderDep, settings: SettingsDep
) -> HTMLResponse:
    model = holder.current
    if model is None:
        return page(request, "model.html", lang, viewer=viewer, model=None)
    cache = request.app.state.web_cache

    def judge():
        if model.scorer.card.source != "crm":
            return None
        return recent_accuracy(model.scorer, repo.load_crm(), datetime.now(UTC))

    accuracy = cache.get(("recent-accuracy", model.version), judge)

    def promises():
        history = load_history(repo.engine, model_version=model.version)
        return outcome_report(history, load_closings(repo.engine), datetime.now(UTC), model.scorer.card.horizon_days)

    outcomes = cache.get(("outcomes", model.version), promises)
    outcome_weeks = records(outcomes.weeks.tail(OUTCOME_WEEKS).iloc[::-1]) if len(outcomes.weeks) else []
    reliability_svg = None
    bands = outcomes.overall_bands
    if len(bands) and (bands["resolved"] > 0).any():
        shown = bands[bands["resolved"] > 0]
        reliability_svg = calibration_chart(
            shown["mean_predicted"].tolist(),
            shown["realised_rate"].tolist(),
            title=i18n.translate("Reliability by score band", lang),
            labels=(i18n.translate("Predicted", lang), i18n.translate("Realised", lang)),
        )
    gate = cache.get(("gate", model.version), lambda: registry.decisions(uri=settings.mlflow_tracking_uri))
    calibration_svg = lift_svg = None
    if accuracy is not None:
        table = accuracy.calibration
        calibration_svg = calibration_chart(
            table["mean_predicted"].tolist(),
            table["observed_rate"].tolist(),
            title=i18n.translate("Calibration chart", lang),
            labels=(i18n.translate("Predicted", lang), i18n.translate("Observed", lang)),
        )
        lift_svg = bar_chart(
            [i18n.fmt_percent(w, lang, 0) for w in accuracy.lift["worked"]],
            accuracy.lift["lift"].fillna(0).tolist(),
            title=i18n.translate("Lift by decile", lang),
            value_format=lambda v: i18n.fmt_number(v, lang, 2),
            reference=1.0,
        )
    for row in gate:
        row["registered_at"] = pd.Timestamp(row["registered_at_ms"], unit="ms", tz="UTC")
    return page(
        request,
        "model.html",
        lang,
        viewer=viewer,
        model=model,
        card=model.scorer.card,
        accuracy=accuracy,
        calibration_svg=calibration_svg,
        lift_svg=lift_svg,
        gate=gate,
        calibration_rows=records(accuracy.calibration) if accuracy is not None else [],
        outcome_weeks=outcome_weeks,
        reliability_svg=reliability_svg,
    )
