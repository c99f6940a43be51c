"""How the model in use does on the latest period whose outcomes are known: AUC, calibration and lift.

The latest snapshots whose horizon has fully passed (weekly cutoffs in the ``weeks`` before ``now - horizon``)
are built point in time from the store's data (:func:`leadscore.features.training_set.build_training_set`),
scored with the model in use and compared with what happened. Unlike the training run's holdout, these leads may
be newer than anything the model was trained on: it is the model's accuracy as deployed. (The stored scores'
own record, promise by promise, is :mod:`leadscore.monitoring.outcomes`; this one needs no stored scores.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.features.history import cutoff_timestamp
from leadscore.features.training_set import build_training_set
from leadscore.model.metrics import calibration_table, evaluate, lift_and_capture
from leadscore.serving.prioritize import with_absent_features

RECENT_WEEKS = 4
LIFT_DECILES = 10


@dataclass(frozen=True)
class RecentAccuracy:
    """The figures of :func:`recent_accuracy`: the period judged, the metrics, the calibration and lift tables."""

    first_cutoff: pd.Timestamp
    last_cutoff: pd.Timestamp
    examples: int
    conversions: int
    metrics: dict[str, float]
    calibration: pd.DataFrame
    lift: pd.DataFrame


def recent_accuracy(scorer, data: CrmData, now: object, *, weeks: int = RECENT_WEEKS) -> RecentAccuracy | None:
    """The model's accuracy on the latest ``weeks`` weekly snapshots whose outcome is known at ``now``; None
    when the data is too short for one (or holds no conversion to judge by)."""
    horizon = float(scorer.card.horizon_days)
    last = cutoff_timestamp(now) - pd.Timedelta(days=horizon)
    cutoffs = [last - pd.Timedelta(weeks=k) for k in range(weeks - 1, -1, -1)]
    cutoffs = [t for t in cutoffs if t >= data.leads["created_at"].min()]
    if not cutoffs:
        return None
    snapshots = build_training_set(data, cutoffs, horizon, extra_types=tuple(scorer.card.extra_types))
    if snapshots.empty or snapshots["label"].nunique() < 2:
        return None
    features = with_absent_features(scorer, snapshots)[0]
    p = scorer.score_features(features, reasons=False)["probability"].to_numpy(dtype=float)
    y = snapshots["label"].to_numpy(dtype=int)
    deciles = [lift_and_capture(y, p, k / LIFT_DECILES) for k in range(1, LIFT_DECILES + 1)]
    lift = pd.DataFrame(
        {
            "worked": np.arange(1, LIFT_DECILES + 1) / LIFT_DECILES,
            "lift": [d[0] for d in deciles],
            "captured": [d[1] for d in deciles],
        }
    )
    return RecentAccuracy(
        first_cutoff=cutoffs[0],
        last_cutoff=cutoffs[-1],
        examples=len(y),
        conversions=int(y.sum()),
        metrics=evaluate(y, p),
        calibration=calibration_table(y, p),
        lift=lift,
    )
