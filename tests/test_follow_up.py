"""Needs follow-up means something: a lead worth chasing, gone quiet for longer than its rhythm, nothing planned.

The rule is in :mod:`leadscore.serving.prioritize`; before it, the flag was on for nearly every grade C and D lead
of the demo (no next step, or untouched for two weeks), and a flag on everything is no flag.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.serving.prioritize import follow_up, interaction_cadence, score_open_leads


@pytest.fixture(scope="module")
def open_table():
    """Every open lead of a simulated CRM scored at its end by a model trained on it."""
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.registry.card import model_card
    from leadscore.serving.scorer import Scorer
    from leadscore.simulation.simulator import simulate

    data = simulate(n_leads=2500, n_reps=6, months=14, seed=7).data
    result = train(training_data_from_crm(data), candidates=["logistic"], check_leakage=False)
    cutoff = data.events["at"].max()
    return score_open_leads(Scorer(result.model, model_card(result)), data, cutoff, follow_up_days=14), data, cutoff


def test_the_flag_marks_well_under_half_of_the_weaker_leads(open_table):
    table, _, _ = open_table
    share = table.groupby("grade")["needs_follow_up"].mean()
    quiet = table["next_scheduled"].isna()
    assert quiet[table["grade"].isin(["C", "D"])].mean() > 0.8  # most weak leads have nothing planned...
    assert share["D"] < 0.25 and share.get("C", 0.0) < 0.5  # ...but a manager is not asked to chase them all
    assert 0.02 < table["needs_follow_up"].mean() < 0.5


def test_every_flagged_lead_is_quiet_unplanned_and_worth_chasing(open_table):
    table, _, _ = open_table
    flagged = table[table["needs_follow_up"]]
    assert len(flagged) > 0
    assert flagged["next_scheduled"].isna().all()
    assert (flagged["days_since_last_touch"] > flagged["cadence_days"]).all()
    assert (flagged["probability"] >= table["probability"].median()).all()
    missed = table[
        ~table["needs_follow_up"]
        & table["next_scheduled"].isna()
        & (table["days_since_last_touch"] > table["cadence_days"])
    ]
    assert (missed["probability"] < table["probability"].median()).all()  # left out only for their low odds


def test_the_cadence_is_the_leads_own_rhythm_else_its_stages(open_table):
    table, data, cutoff = open_table
    own = interaction_cadence(data.events, cutoff)
    with_own = table[table["lead_id"].isin(own.index)]
    expected = own.reindex(with_own["lead_id"]).clip(1, 14).round(2).to_numpy()
    assert np.allclose(with_own["cadence_days"].to_numpy(), expected)
    without = table[~table["lead_id"].isin(own.index)]
    stage_usual = pd.Series(own.reindex(table["lead_id"]).to_numpy()).groupby(table["stage"].to_numpy()).median()
    for stage, gap in without.groupby("stage")["cadence_days"].first().items():
        assert gap == pytest.approx(np.clip(stage_usual[stage], 1, 14), abs=0.01)


def test_a_lead_with_a_next_step_or_below_the_floor_is_never_flagged():
    flag, gap = follow_up(
        probability=np.array([0.9, 0.9, 0.1, 0.9]),
        days_since_last_touch=np.array([30.0, 30.0, 30.0, 2.0]),
        has_next_step=np.array([True, False, False, False]),
        stage=pd.Series(["new", "new", "new", "new"]),
        own_cadence=np.array([3.0, 3.0, 3.0, 3.0]),
        follow_up_days=14,
        min_probability=0.5,
    )
    assert flag.tolist() == [False, True, False, False] and gap.tolist() == [3.0] * 4
