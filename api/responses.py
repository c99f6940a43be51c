"""Library results to response bodies: what the scoring and lead routes share when they answer."""

from __future__ import annotations

from typing import Any

import pandas as pd

from leadscore.api.score_schemas import NotScored
from leadscore.data.contracts import CrmData
from leadscore.data.records import column_values
from leadscore.serving.scorer import OUTPUT_COLUMNS
from leadscore.serving.unscored import why_not_scored


def score_records(scores: pd.DataFrame | dict[str, Any]) -> list[dict[str, Any]]:
    """Scorer output (a frame, or columns by name) as the score items of a response (missing values as None)."""
    columns = {name: column_values(scores[name]) for name in OUTPUT_COLUMNS}
    columns["lead_id"] = [str(lead) for lead in columns["lead_id"]]
    # A dict display per lead rather than leadscore.data.records.records: with the keys written out it is twice
    # as fast as dict(zip(...)), and this is the one place where a thousand rows go out per request.
    return [
        {
            "lead_id": lead,
            "probability": probability,
            "grade": grade,
            "percentile": percentile,
            "reasons_up": up,
            "reasons_down": down,
            "model_version": version,
            "cutoff": cutoff,
            "provisional": provisional,
        }
        for lead, probability, grade, percentile, up, down, version, cutoff, provisional in zip(
            *(columns[name] for name in OUTPUT_COLUMNS), strict=True
        )
    ]


def not_scored(data: CrmData, scored: set[str], cutoff: pd.Timestamp) -> list[NotScored]:
    """Why each lead of ``data`` that is not in ``scored`` was left out: created later, or closed."""
    reasons = why_not_scored(data.leads, data.events, scored, cutoff)
    return [NotScored(lead_id=lead_id, reason=reason) for lead_id, reason in reasons.items()]
