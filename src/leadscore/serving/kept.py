"""Scores from the store, for a set of leads at a time: what a kept score row holds, and the list as of a past time.

:func:`latest_scores` is what the score keeper (:mod:`leadscore.serving.keeper`) stores for each open lead: the
scorer's answer for that lead alone at the cutoff (probability, grade, reference percentile, reasons) and the
follow-up facts of :func:`leadscore.serving.prioritize.opportunities`, the function that defines them. Features
depend only on a lead's own rows and the cutoff, so scoring a batch of leads gives each what scoring it alone
gives: a stored score is what :class:`~leadscore.serving.scorer.Scorer` says for that lead at that cutoff.

:func:`open_leads_scored_at` is the whole list as of a past time, built batch by batch so that memory holds one
batch of histories and the scored rows, never the store.
"""

from __future__ import annotations

import pandas as pd

from leadscore.data.contracts import CrmData
from leadscore.grades import batch_percentiles
from leadscore.serving.prioritize import features_for, opportunities, score_open_leads

#: Leads per batch: one batch's histories in memory at a time.
BATCH_LEADS = 500


def latest_scores(scorer, leads: pd.DataFrame, events: pd.DataFrame, cutoff: object, follow_up_days: float):
    """The score rows of the leads of ``leads`` open at ``cutoff``: one per open lead, none for the others.

    Columns: the scorer's (``percentile`` within the model's reference scores, so it does not depend on the
    batch), the follow-up facts of :func:`~leadscore.serving.prioritize.opportunities` and ``expected_value``.

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
    return table


def open_leads_scored_at(
    repo, scorer, cutoff: pd.Timestamp, follow_up_days: float, *, batch_leads: int = BATCH_LEADS
) -> pd.DataFrame:
    """:func:`leadscore.serving.prioritize.score_open_leads` on the leads open at ``cutoff`` in the store, read
    ``batch_leads`` leads at a time (percentiles among all of them, as the one-batch version gives).

    Examples
    --------
    >>> table = open_leads_scored_at(repo, scorer, pd.Timestamp("2024-10-01", tz="UTC"), 14)  # doctest: +SKIP
    """
    ids = repo.open_lead_ids(cutoff.to_pydatetime())
    parts = []
    for start in range(0, len(ids), batch_leads):
        chunk = ids[start : start + batch_leads]
        data = CrmData(leads=repo.load_leads(chunk, attributes=scorer.attributes), events=repo.load_events(chunk))
        parts.append(score_open_leads(scorer, data, cutoff, follow_up_days))
    if not parts:
        return score_open_leads(scorer, CrmData(leads=repo.load_leads([]), events=repo.load_events([])), cutoff, follow_up_days)
    table = pd.concat(parts, ignore_index=True)
    table["percentile"] = batch_percentiles(table["probability"].to_numpy())
    return table
