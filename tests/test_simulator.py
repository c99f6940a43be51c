"""The simulated CRM: deterministic, valid against the contracts, realistic, and with a truth that is true."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import expm
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.contracts import COLD_CALL_SUBTYPE, GOAL_METRICS, KNOWN_EVENT_TYPES, STAGES, CrmData
from leadscore.data.io import load_dataset
from leadscore.simulation.process import N_STATES, N_TRANSIENT, WON, state_at
from leadscore.simulation.simulator import SimulatedCrm, simulate

HORIZON = pd.Timedelta(days=90)


@pytest.fixture(scope="module")
def sim() -> SimulatedCrm:
    return simulate(n_leads=2_000, n_reps=5, months=12, seed=7)


@pytest.fixture(scope="module")
def big() -> SimulatedCrm:
    """Enough leads for the statistics of the truth to be sharp."""
    return simulate(n_leads=8_000, n_reps=8, months=12, seed=11)


def _won_at(data: CrmData) -> pd.Series:
    won = data.events[data.events["type"] == "won"]
    return won.set_index("lead_id")["at"]


def _labelled_truth(s: SimulatedCrm) -> pd.DataFrame:
    """The truth at every cutoff whose 90-day horizon lies inside the data, with the observed outcome."""
    truth = s.truth[s.truth["cutoff"] + HORIZON <= s.data.end].copy()
    won_at = truth["lead_id"].map(_won_at(s.data))
    truth["won"] = (won_at > truth["cutoff"]) & (won_at <= truth["cutoff"] + HORIZON)
    return truth


def test_the_same_seed_gives_identical_data_and_truth():
    a = simulate(n_leads=400, n_reps=3, months=5, seed=3)
    b = simulate(n_leads=400, n_reps=3, months=5, seed=3)
    for table in ("leads", "events", "goals", "expenses"):
        pd.testing.assert_frame_equal(getattr(a.data, table), getattr(b.data, table))
    pd.testing.assert_frame_equal(a.truth, b.truth)


def test_a_different_seed_gives_different_data():
    a = simulate(n_leads=400, n_reps=3, months=5, seed=3)
    b = simulate(n_leads=400, n_reps=3, months=5, seed=4)
    assert not a.data.leads["created_at"].equals(b.data.leads["created_at"])
    assert len(a.data.events) != len(b.data.events) or not a.data.events["at"].equals(b.data.events["at"])


def test_the_tables_pass_the_contracts_unchanged(sim):
    d = sim.data
    validated = CrmData.from_frames(d.leads, d.events, d.goals, d.expenses)
    for table in ("leads", "events", "goals", "expenses"):
        pd.testing.assert_frame_equal(getattr(validated, table), getattr(d, table))


def test_events_belong_to_known_leads_and_have_unique_deterministic_ids(sim):
    events = sim.data.events
    assert events["lead_id"].isin(sim.data.leads["lead_id"]).all()
    assert events["event_id"].is_unique
    assert events["event_id"].iloc[0] == "ev_0000001"
    assert events["at"].is_monotonic_increasing


def test_no_event_before_its_lead_is_created_or_after_it_is_closed(sim):
    events = sim.data.events
    created = events["lead_id"].map(sim.data.leads.set_index("lead_id")["created_at"])
    assert (events["at"] >= created).all()
    closing = events[events["type"].isin(["won", "lost"])]
    assert closing["lead_id"].is_unique, "a lead is closed at most once"
    closed_at = events["lead_id"].map(closing.set_index("lead_id")["at"])
    assert not (events["at"] > closed_at).any()


def test_all_timestamps_are_utc_and_inside_the_period(sim):
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2025-01-01", tz="UTC")
    for frame, column in (
        (sim.data.leads, "created_at"),
        (sim.data.events, "at"),
        (sim.data.expenses, "at"),
        (sim.data.goals, "start"),
    ):
        assert str(frame[column].dt.tz) == "UTC"
        assert frame[column].between(start, end, inclusive="left").all(), column
    assert sim.data.leads["created_at"].max() > end - pd.Timedelta(days=7), "leads arrive until the end"


def test_events_look_like_a_sales_team_at_work(sim):
    events = sim.data.events
    assert set(events["type"]) == set(KNOWN_EVENT_TYPES)
    per_lead = len(events) / len(sim.data.leads)
    assert 15 <= per_lead <= 35
    calls = events[events["type"] == "call"]
    assert calls["duration_s"].notna().all() and (calls["subtype"] == COLD_CALL_SUBTYPE).any()
    changes = events[events["type"] == "stage_changed"]
    assert set(changes["stage"]) == set(STAGES)
    assert changes.loc[changes["stage"] == "proposal", "amount"].gt(0).all()
    assert events.loc[events["type"] == "won", "amount"].gt(0).all()
    reasons = events.loc[events["type"] == "lost", "subtype"]
    assert set(reasons) <= {"price", "competitor", "no_budget", "no_response", "timing"} and reasons.nunique() == 5
    assert set(events["rep_id"].dropna()) == set(sim.data.leads["owner_id"])


def test_meetings_are_scheduled_ahead_then_held_at_the_slot_or_cancelled(sim):
    events = sim.data.events
    scheduled = events[events["type"] == "meeting_scheduled"]
    assert (scheduled["scheduled_for"] > scheduled["at"]).all()
    held = events[events["type"] == "meeting_held"]
    assert (held["at"] == held["scheduled_for"]).all() and held["duration_s"].gt(0).all()
    slots = set(zip(scheduled["lead_id"], scheduled["scheduled_for"], strict=True))
    for kind in ("meeting_held", "meeting_cancelled", "meeting_rejected"):
        outcome = events[events["type"] == kind]
        assert len(outcome) > 0
        assert all(key in slots for key in zip(outcome["lead_id"], outcome["scheduled_for"], strict=True)), kind
        assert (outcome["at"] <= outcome["scheduled_for"]).all()


def test_base_conversion_rate_is_about_ten_percent(sim):
    leads = sim.data.leads
    early = leads[leads["created_at"] < pd.Timestamp("2024-07-01", tz="UTC")]
    rate = early["lead_id"].isin(_won_at(sim.data).index).mean()
    assert 0.06 <= rate <= 0.15


def test_sources_convert_at_different_rates(big):
    leads = big.data.leads.assign(won=big.data.leads["lead_id"].isin(_won_at(big.data).index))
    by_source = leads.groupby("source")["won"].mean()
    assert set(by_source.index) == {"web", "paid_ads", "outbound", "referral", "event", "partner"}
    assert by_source["referral"] > 3 * by_source["outbound"]
    assert by_source["partner"] > by_source["web"] > by_source["paid_ads"]


def test_most_leads_never_won_are_lost_with_a_reason_and_the_rest_go_stale(sim):
    events, leads = sim.data.events, sim.data.leads
    early = leads[leads["created_at"] < pd.Timestamp("2024-07-01", tz="UTC")]["lead_id"]
    closed = events[events["type"].isin(["won", "lost"])].set_index("lead_id")["type"]
    outcome = early.map(closed).fillna("open")
    shares = outcome.value_counts(normalize=True)
    assert shares["lost"] > 0.6 and 0.0 < shares["open"] < 0.2


def test_business_slows_down_in_august(big):
    events = big.data.events
    per_day = events.groupby(events["at"].dt.month).size() / events.groupby(events["at"].dt.month)["at"].apply(
        lambda t: t.dt.date.nunique()
    )
    assert per_day[8] < 0.8 * per_day[[9, 10]].mean()


def test_goals_cover_team_and_reps_by_month_week_and_day(sim):
    goals = sim.data.goals
    team = goals[goals["scope"] == "team"]
    assert set(team["period"]) == {"day", "week", "month"}
    assert set(team["metric"]) == set(GOAL_METRICS)
    reps = goals[goals["scope"] != "team"]
    assert set(reps["scope"]) == set(sim.data.leads["owner_id"])
    assert set(reps["period"]) == {"week", "month"}
    assert (goals["target"] >= 0).all()
    assert team.loc[(team["period"] == "month") & (team["metric"] == "revenue"), "target"].gt(0).all()


def test_expenses_come_from_ads_shows_travel_and_tools(sim):
    expenses = sim.data.expenses
    assert set(expenses["category"]) == {"ads", "events", "travel", "tools"}
    assert expenses["amount"].gt(0).all()
    assert expenses.loc[expenses["category"] == "ads", "campaign"].notna().all()
    assert expenses.loc[expenses["category"] == "travel", "rep_id"].notna().all()


def test_truth_covers_exactly_the_leads_open_at_each_weekly_cutoff(sim):
    leads, events = sim.data.leads, sim.data.events
    closed_at = events[events["type"].isin(["won", "lost"])].set_index("lead_id")["at"]
    assert (sim.truth["cutoff"].dt.day_of_week == 0).all()
    for cutoff in sim.truth["cutoff"].unique()[::9]:
        created = leads["created_at"] <= cutoff
        still_open = ~(leads["lead_id"].map(closed_at) <= cutoff)
        expected = set(leads.loc[created & still_open, "lead_id"])
        assert set(sim.truth.loc[sim.truth["cutoff"] == cutoff, "lead_id"]) == expected


def test_truth_matches_the_matrix_exponential_of_the_hidden_chain(sim):
    """The propensity is P(won within 90 days | hidden state), computed independently with expm."""
    ids = {lead_id: i for i, lead_id in enumerate(sim.data.leads["lead_id"])}
    for row in sim.truth.sample(8, random_state=0).itertuples():
        lead, cut = ids[row.lead_id], int(row.cutoff.timestamp())
        state = state_at(sim.paths, np.array([lead]), np.array([cut]))[0]
        generator = np.zeros((N_STATES, N_STATES))
        generator[:N_TRANSIENT] = sim.rates[lead]
        np.fill_diagonal(generator, -generator.sum(axis=1))
        horizon = sim.clock.to_op(cut + 90 * 86_400.0) - sim.clock.to_op(float(cut))
        assert row.propensity == pytest.approx(expm(generator * horizon)[state, WON], abs=1e-9)


def test_truth_grows_with_the_horizon(sim):
    cutoffs = ["2024-06-03", "2024-09-02"]
    short, long = sim.truth_at(cutoffs, horizon_days=30), sim.truth_at(cutoffs, horizon_days=90)
    assert short["lead_id"].tolist() == long["lead_id"].tolist()
    assert (short["propensity"] <= long["propensity"] + 1e-12).all()


def test_truth_is_calibrated_against_observed_outcomes(big):
    truth = _labelled_truth(big)
    assert truth["propensity"].mean() == pytest.approx(truth["won"].mean(), rel=0.12)
    bins = pd.qcut(truth["propensity"], 5, labels=False)
    by_bin = truth.groupby(bins).agg(p=("propensity", "mean"), rate=("won", "mean"))
    assert np.allclose(by_bin["p"], by_bin["rate"], atol=0.03, rtol=0.2), by_bin


def test_leads_with_a_high_truth_convert_much_more_often(big):
    truth = _labelled_truth(big)
    quintile = truth.groupby("cutoff")["propensity"].transform(lambda p: pd.qcut(p, 5, labels=False))
    rate = truth.groupby(quintile)["won"].mean()
    assert rate[4] > 10 * rate[0] and rate[4] > 0.25


def test_the_oracle_is_good_but_not_perfect(big):
    truth = _labelled_truth(big)
    auc = roc_auc_score(truth["won"], truth["propensity"])
    assert 0.8 <= auc <= 0.92


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_cli_writes_a_data_set_that_loads_back(tmp_path, fmt):
    out = tmp_path / "crm"
    args = ["simulate", "--leads", "300", "--reps", "3", "--months", "4", "--seed", "5", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--format", fmt])
    assert result.exit_code == 0, result.output
    assert "300 leads" in result.output
    for table in ("leads", "events", "goals", "expenses", "truth"):
        assert (out / f"{table}.{fmt}").is_file()
    loaded = load_dataset(out)
    expected = simulate(n_leads=300, n_reps=3, months=4, seed=5)
    for table in ("events", "goals", "expenses"):
        pd.testing.assert_frame_equal(getattr(loaded, table), getattr(expected.data, table))
    columns = ["lead_id", "created_at", "owner_id", "source", "segment", "country"]
    pd.testing.assert_frame_equal(loaded.leads[columns], expected.data.leads[columns])
    truth = pd.read_parquet(out / "truth.parquet") if fmt == "parquet" else pd.read_csv(out / "truth.csv")
    assert len(truth) == len(expected.truth)
    assert np.allclose(truth["propensity"], expected.truth["propensity"])


def test_simulate_rejects_an_empty_team():
    with pytest.raises(ValueError, match="n_reps"):
        simulate(n_leads=10, n_reps=0)
