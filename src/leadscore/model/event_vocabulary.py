"""The vocabulary of unknown event types for a training run, chosen from the training events only.

Training validates on the latest snapshots (:func:`leadscore.model.splits.time_split`); the vocabulary
(:mod:`leadscore.features.vocabulary`) must not be decided by events of that later period, or validation
would flatter the model with a choice made knowing the future. So it is chosen from the events known at the
last cutoff training learns from: the same split as :func:`leadscore.model.training.train` will make, worked out
from the labelled snapshots before their features are built. The final model, refitted on every snapshot, keeps
that vocabulary, and scoring uses it too (it travels in the model card).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.data.times import epoch_days
from leadscore.features.training_set import label_snapshots
from leadscore.features.vocabulary import EventVocabulary, VocabularyRule, choose_event_vocabulary
from leadscore.model.splits import VALIDATION_FRACTION, time_split


def last_training_cutoff(
    cutoffs: pd.Series, horizon_days: float, validation_fraction: float = VALIDATION_FRACTION
) -> pd.Timestamp | None:
    """The latest snapshot cutoff that training learns from, by the rule of :func:`time_split`.

    ``cutoffs`` holds one cutoff per labelled snapshot. When the snapshots cannot be split (one cutoff only, or
    a horizon longer than the data), training will not validate either: the last cutoff is returned. None when
    there is no snapshot at all.

    Examples
    --------
    >>> import pandas as pd
    >>> weeks = pd.Series(pd.date_range("2024-01-01", periods=10, freq="7D", tz="UTC"))
    >>> str(last_training_cutoff(weeks, horizon_days=14, validation_fraction=0.2).date())
    '2024-02-05'
    """
    if len(cutoffs) == 0:
        return None
    stamps = pd.to_datetime(cutoffs, utc=True).reset_index(drop=True)
    try:
        split = time_split(epoch_days(stamps), horizon_days, validation_fraction)
    except ValueError:  # no earlier period to train on: training will not split either
        return stamps.max()
    return stamps.iloc[split.train].max()


def training_vocabulary(
    data: CrmData,
    *,
    horizon_days: float,
    cutoffs=None,
    validation_fraction: float = VALIDATION_FRACTION,
    rule: VocabularyRule = VocabularyRule(),
) -> EventVocabulary:
    """The vocabulary of unknown event types chosen from the events known at the last training cutoff.

    Examples
    --------
    >>> from leadscore.simulation.simulator import simulate
    >>> vocabulary = training_vocabulary(simulate(n_leads=200, months=6, seed=1).data, horizon_days=30)
    >>> vocabulary.types  # the simulator uses known types only
    ()
    """
    snapshots = label_snapshots(data, cutoffs, horizon_days)
    before = last_training_cutoff(snapshots["cutoff"], horizon_days, validation_fraction)
    return choose_event_vocabulary(data.events, before=before, rule=rule)


def repeat_counts(per_cutoff: pd.DataFrame) -> pd.Series:
    """One cutoff per snapshot from a table of (``cutoff``, ``count``): what Spark's aggregation brings back."""
    return pd.Series(np.repeat(pd.to_datetime(per_cutoff["cutoff"], utc=True).to_numpy(), per_cutoff["count"]))
