"""The model card: what travels with a registered model (in its MLmodel ``metadata``) for scoring and the gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from joblib import hash as joblib_hash
from sklearn.base import clone

REFERENCE_QUANTILES = 101


@dataclass
class ModelCard:
    """What travels with a registered model (in its MLmodel ``metadata``) for scoring and for the gate."""

    source: str  # "crm" or "table"
    kinds: dict[str, str]
    chosen: str
    calibration: str
    cold_start: bool
    horizon_days: float
    time_kind: str
    trained_until: float | None  # last label time (days since epoch) for absolute times, else None
    reference_quantiles: list[float]
    explanation: str
    catalogue_version: str | None = None
    extra_types: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)  # the lead attributes chosen (CRM names), read to score
    recipe: str = ""
    version: str = ""
    # The chosen model's calibration on the later period and a plain logistic regression's (``later_*``).
    later_period: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, version: str = "") -> ModelCard:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "version": str(version)})


def recipe_hash(model) -> str:
    """A fingerprint of a model's recipe (estimators and settings, not fitted state)."""
    return joblib_hash(clone(model))


def model_card(result, *, catalogue_version: str | None = None, extra_types=()) -> ModelCard:
    """The card of a training result's final model."""
    from leadscore.model.explain import explain

    data = result.data
    if result.chosen is not None:
        reference = result.chosen.probabilities
        chosen, calibration = result.chosen.name, result.chosen.calibration
    else:
        reference = result.model.predict_proba(data.X)[:, 1]
        chosen, calibration = "cold_start", "none"
    trained_until = None
    if data.times is not None and data.time_kind in ("cutoff", "column"):
        trained_until = float(data.times.max() + data.horizon)
    sample = data.X.head(1)
    return ModelCard(
        source=data.source,
        kinds=dict(data.kinds),
        chosen=chosen,
        calibration=calibration,
        cold_start=result.cold_start,
        horizon_days=float(data.horizon),
        time_kind=data.time_kind,
        trained_until=trained_until,
        reference_quantiles=[float(q) for q in np.quantile(reference, np.linspace(0, 1, REFERENCE_QUANTILES))],
        explanation=explain(result.model, sample).method,
        catalogue_version=catalogue_version,
        extra_types=list(extra_types),
        attributes=list((data.choices.get("attributes") or {}).get("chosen", [])),
        recipe=recipe_hash(result.model),
        later_period={k: float(v) for k, v in result.later_period.items() if np.isfinite(v)},  # JSON-safe
    )
