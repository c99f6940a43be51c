"""What a kept score row holds, for a batch of leads at a time.

:func:`latest_scores` is what the score keeper (:mod:`leadscore.serving.keeper`) stores for each open lead: the
scorer's answer for that lead alone at the cutoff (probability, grade, reference percentile, reasons) and the
follow-up facts of :func:`leadscore.serving.prioritize.opportunities`, the function that defines them. Features
depend only on a lead's own rows and the cutoff, so scoring a batch of leads gives each what scoring it alone
gives: a stored score is what :class:`~leadscore.serving.scorer.Scorer` says for that lead at that cutoff.

"""

from __future__ import annotations

import pandas as pd

from leadscore.serving.prioritize import features_for, follow_up, interaction_cadence, opportunities

#: Leads per batch: one batch's histories in memory at a time.
BATCH_LEADS = 500


def latest_scores(
    scorer,
    leads: pd.DataFrame,
    events: pd.DataFrame,
    cutoff: object,
    follow_up_days: float,
    *,
    min_probability: float | None = None,
):
    """The score rows of the leads of ``leads`` open at ``cutoff``: one per open lead, none for the others.

    Columns: the scorer's (``percentile`` within the model's reference scores, so it does not depend on the
    batch), the follow-up facts of :func:`~leadscore.serving.prioritize.opportunities`, ``needs_follow_up`` by
    :func:`~leadscore.serving.prioritize.follow_up` (the list's rule; ``min_probability`` is its "worth chasing"
    floor, the median probability of the open leads, which the keeper reads from the store; the usual gap of a
    stage is taken among the leads of the batch, until the keeper re-derives the flags store-wide:
    :meth:`~leadscore.serving.keeper.ScoreKeeper.reflag`), ``own_cadence_days`` (the lead's own cadence, NaN
    when it has too few interactions) and ``expected_value``.

    Examples
    --------
    >>> rows = latest_scores(scorer, data.leads, data.events, "2024-10-01", 14)  # doctest: +SKIP
    >>> rows[["lead_id", "probability", "needs_follow_up"]].head(1)  # doctest: +SKIP
    """
    features, _ = features_for(scorer, leads, events, cutoff)
    # As the one-lead route has always ranked: within the model's reference scores when it has them.
    percentile_of = "reference" if len(scorer.card.reference_quantiles or []) else "batch"
    scores = scorer.score_features(features, percentile_of=percentile_of).reset_index(drop=True)
    where = opportunities(features, leads, cutoff, follow_up_days).drop(columns="lead_id")
    table = pd.concat([scores, where.reset_index(drop=True)], axis=1)
    table["expected_value"] = table["probability"] * table["deal_amount"]
    own = interaction_cadence(events, cutoff).reindex(table["lead_id"]).to_numpy()
    table["needs_follow_up"], table["cadence_days"] = follow_up(
        probability=table["probability"].to_numpy(dtype=float),
        days_since_last_touch=table["days_since_last_touch"].to_numpy(dtype=float),
        has_next_step=table["next_scheduled"].notna().to_numpy(),
        stage=table["stage"],
        own_cadence=own,
        follow_up_days=follow_up_days,
        min_probability=min_probability,
    )
    table["own_cadence_days"] = own
    return table
