"""A lead's score over time: its probability recomputed as of each of the last weeks, point in time.

Every point is what the model in use would have said at that moment from what was known then (the features as
of each cutoff, :func:`leadscore.features.builder.features_at`), so the trend shows how the lead's own history
moved its score, not how the model changed. The events are encoded once for all the cutoffs.
"""

from __future__ import annotations

import pandas as pd

from leadscore.features.builder import features_at, prepare_events
from leadscore.features.history import cutoff_timestamp
from leadscore.serving.prioritize import with_absent_features

TREND_WEEKS = 8


def weekly_cutoffs_until(cutoff: object, weeks: int = TREND_WEEKS) -> list[pd.Timestamp]:
    """``cutoff`` and the same moment each of the ``weeks`` weeks before it, oldest first.

    Examples
    --------
    >>> [str(t.date()) for t in weekly_cutoffs_until("2024-03-29", weeks=2)]
    ['2024-03-15', '2024-03-22', '2024-03-29']
    """
    t = cutoff_timestamp(cutoff)
    return [t - pd.Timedelta(weeks=k) for k in range(weeks, -1, -1)]


def score_trend(
    scorer,
    leads: pd.DataFrame,
    events: pd.DataFrame,
    cutoff: object,
    *,
    weeks: int = TREND_WEEKS,
    reasons: bool = False,
    lang: str = "en",
) -> pd.DataFrame:
    """The scores of ``leads`` at each weekly cutoff up to ``cutoff`` (where they were open), oldest first.

    Returns the scorer's columns (``lead_id``, ``cutoff``, ``probability``, ``grade``, ``percentile`` within the
    model's reference scores, and with ``reasons`` the reasons in ``lang``); a cutoff where a lead was not open (not
    created yet, or closed) has no row for it. The last cutoff's row is the lead's score now, so a page that shows
    both needs only this one call.
    """
    prepared = prepare_events(leads, events)
    extra = tuple(scorer.card.extra_types)
    frames = [features_at(prepared, t, extra_types=extra) for t in weekly_cutoffs_until(cutoff, weeks)]
    features = with_absent_features(scorer, pd.concat(frames, ignore_index=True))[0]
    return scorer.score_features(features, percentile_of="reference", reasons=reasons, lang=lang)
