"""The monitor: stored scores matched with outcomes, drift against the training data, and the simulator's drift.

The targets of issue 16, as tests on the simulator:

- the monitor's realised conversion per score band agrees with the simulator's truth: taking each lead's first
  promise (so that outcomes are independent Bernoulli trials of their true probabilities), per band and over
  all, the wins the monitor counts lie within 3.29 standard deviations (99.9 %) of the sum of the true
  probabilities; and the report's band table is exactly those matched promises counted;
- an injected drift (a source converting half as often; a new event type) is flagged within two weekly reports;
- an unchanged simulation raises no alert over a year of weekly reports.

Simulations are small and cached per session; ``benchmarks/monitoring.py`` runs the larger version.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.data.contracts import CrmData
from leadscore.model.reference import TrainingReference, training_reference
from leadscore.monitoring.drift import DriftThresholds, drift_report, psi, weekly_drift
from leadscore.monitoring.outcomes import match_outcomes, outcome_report, weekly_promises
from leadscore.simulation.drift import NewEventType, SourceDrift
from leadscore.simulation.simulator import simulate

pytest_plugins = ["api_fixtures"]

UTC = "UTC"
TRAIN_END = pd.Timestamp("2024-10-01", tz=UTC)


def _trained(data: CrmData, until: pd.Timestamp = TRAIN_END, **train_options):
    """A scorer trained on what was known before ``until``, and its training reference."""
    from leadscore.model.training import train
    from leadscore.registry.card import model_card
    from leadscore.registry.workflow import crm_training_data
    from leadscore.serving.scorer import Scorer

    known = CrmData(leads=data.leads[data.leads["created_at"] < until], events=data.events[data.events["at"] < until])
    labelled, vocabulary = crm_training_data(known)
    result = train(labelled, **train_options)
    card = model_card(result, extra_types=vocabulary.types)
    card.version = "1"
    scores = result.model.predict_proba(labelled.X)[:, 1]
    return Scorer(result.model, card), training_reference(labelled.X, labelled.kinds, scores, labelled.horizon)


# ------------------------------------------------------------------------------------------- the counting rule


def _history(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["lead_id", "scored_at", "probability", "model_version"])
    frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
    return frame.assign(id=np.arange(len(frame)), cutoff=frame["scored_at"], grade="C")


def test_a_lead_scored_many_times_in_a_week_counts_once_with_its_last_score():
    history = _history(
        [
            ("a", "2025-01-06 00:00", 0.1, "1"),  # Monday: the week's first moment
            ("a", "2025-01-08 12:00", 0.2, "1"),
            ("a", "2025-01-12 23:59", 0.3, "1"),  # Sunday: still the same week
            ("a", "2025-01-13 00:00", 0.4, "1"),  # next week
            ("a", "2025-01-09 00:00", 0.5, "2"),  # another version: a promise of its own
        ]
    )
    promises = weekly_promises(history)
    assert promises[["model_version", "probability"]].values.tolist() == [["1", 0.3], ["1", 0.4], ["2", 0.5]]


def test_a_promise_resolves_when_its_horizon_passes_or_the_lead_closes():
    promises = _history(
        [("won_in", "2025-01-06", 0.5, "1"), ("won_late", "2025-01-06", 0.5, "1"), ("lost", "2025-01-06", 0.5, "1"),
         ("open", "2025-01-06", 0.5, "1"), ("won_at_edge", "2025-01-06", 0.5, "1")]
    )  # fmt: skip
    closings = pd.DataFrame(
        {
            "closed_at": pd.to_datetime(["2025-02-01", "2025-05-01", "2025-01-20", "2025-01-16"], utc=True),
            "won": [True, True, False, True],
        },
        index=["won_in", "won_late", "lost", "won_at_edge"],
    )
    # Judged on 2025-03-01 with H = 10 days: the horizon has passed for every promise.
    late = match_outcomes(promises, closings, "2025-03-01", 10).set_index("lead_id")
    assert late["resolved"].all()
    assert late["outcome"].to_dict() == {"won_in": 0.0, "won_late": 0.0, "lost": 0.0, "open": 0.0, "won_at_edge": 1.0}
    # On 2025-01-25 with H = 90 days: only the leads closed by then are known; a win exactly at cutoff + H counts.
    early = match_outcomes(promises, closings, "2025-01-25", 90).set_index("lead_id")
    assert early["resolved"].to_dict() == {
        "won_in": False, "won_late": False, "lost": True, "open": False, "won_at_edge": True
    }  # fmt: skip
    assert early.loc["lost", "outcome"] == 0.0 and early.loc["won_at_edge", "outcome"] == 1.0
    assert early.loc[["won_in", "open"], "outcome"].isna().all()


def test_the_report_counts_waiting_scores_and_metrics_of_the_resolved_ones():
    history = _history([(f"l{i}", "2025-01-06", p, "1") for i, p in enumerate([0.1, 0.2, 0.8, 0.9])])
    events = pd.DataFrame(
        {"lead_id": ["l2", "l3", "l0"], "at": pd.to_datetime(["2025-01-20", "2025-02-01", "2025-01-10"], utc=True),
         "type": ["won", "won", "lost"]}
    )  # fmt: skip
    report = outcome_report(history, events, "2025-01-25", 90)
    week = report.weeks.iloc[0]
    assert (week["promises"], week["resolved"], week["waiting"], week["conversions"]) == (4, 2, 2, 1)
    assert not week["final"]
    assert week["roc_auc"] == 1.0  # l2 (0.8, won) above l0 (0.1, lost)
    final = outcome_report(history, events, "2025-06-01", 90).weeks.iloc[0]
    assert (final["resolved"], final["waiting"], final["conversions"], final["final"]) == (4, 0, 2, True)


# ------------------------------------------------------------------------------------------------ PSI basics


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift():
    ref = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(ref, ref) == 0.0
    assert 0 < psi(ref, np.array([0.3, 0.25, 0.25, 0.2])) < psi(ref, np.array([0.7, 0.1, 0.1, 0.1]))


def test_the_training_reference_survives_json_and_counts_unseen_categories():
    X = pd.DataFrame({"n": [0.0, 0.0, 1.0, 2.0, np.nan], "c": ["a", "a", "b", None, "b"]})
    ref = training_reference(X, {"n": "numeric", "c": "categorical"}, np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    back = TrainingReference.from_dict(ref.to_dict())
    assert back.to_dict() == ref.to_dict()
    assert back.features["n"].missing_rate == pytest.approx(0.2)
    counts, unseen = back.features["c"].bin_counts(pd.Series(["a", "z", "z", None]))
    assert counts.tolist() == [1, 0, 2, 1] and unseen == {"z": 2}


# ------------------------------------------------------------------------------------------ simulated drift


def test_a_source_drift_dooms_half_its_leads_from_its_start_and_the_truth_knows_it():
    start = pd.Timestamp("2024-05-01", tz=UTC)
    sim = simulate(n_leads=3000, n_reps=5, months=9, seed=2, drift=[SourceDrift(source="referral", start=start)])
    leads = sim.data.leads
    doomed = pd.Series(sim.doomed, index=leads["lead_id"])
    assert set(leads.loc[doomed.to_numpy(), "source"]) == {"referral"}
    assert 0.4 < doomed[leads.loc[leads["source"] == "referral", "lead_id"]].mean() < 0.6
    wins = sim.data.events[(sim.data.events["type"] == "won") & (sim.data.events["at"] >= start)]
    assert not doomed[wins["lead_id"]].any(), "a doomed lead was won after the drift began"
    truth = sim.truth.set_index("lead_id")
    after = truth[(truth["cutoff"] >= start) & doomed.reindex(truth.index).to_numpy()]
    assert len(after) and (after["propensity"] == 0).all()
    before = truth[(truth["cutoff"] < start) & doomed.reindex(truth.index).to_numpy()]
    assert (before["propensity"] > 0).any()


def test_a_new_event_type_appears_only_from_its_start_and_only_for_open_leads():
    sim = simulate(n_leads=800, n_reps=4, months=6, seed=4, drift=[NewEventType(type="webinar", start="2024-04-15")])
    events = sim.data.events
    new = events[events["type"] == "webinar"]
    assert len(new) > 50 and (new["at"] >= pd.Timestamp("2024-04-15", tz=UTC)).all()
    closed = events[events["type"].isin(("won", "lost"))].groupby("lead_id")["at"].min()
    assert (new["at"] <= new["lead_id"].map(closed).fillna(pd.Timestamp.max.tz_localize(UTC))).all()
    assert new["event_id"].is_unique and events["event_id"].is_unique


def test_without_drift_the_simulation_is_unchanged():
    plain = simulate(n_leads=400, n_reps=4, months=5, seed=9)
    later = simulate(n_leads=400, n_reps=4, months=5, seed=9, drift=[NewEventType(start="2030-01-01")])
    pd.testing.assert_frame_equal(plain.data.events, later.data.events)
    pd.testing.assert_frame_equal(plain.truth, later.truth)


# ----------------------------------------------------------------------- calibration against the simulator


@pytest.fixture(scope="session")
def promised_year():
    """A 6,000-lead CRM over 15 months, a model trained on its first 9, and 18 weekly scorings of its open
    leads after that, stored in a real SQLite store and judged by the monitor once every horizon has passed."""
    from leadscore.monitoring.report import monitor_store
    from leadscore.store import Repository, upgrade_database

    sim = simulate(n_leads=6000, n_reps=8, months=15, seed=21)
    scorer, _ = _trained(sim.data)
    return sim, scorer, Repository, upgrade_database, monitor_store


def _store_weekly_scores(repo, scorer, data: CrmData, cutoffs) -> None:
    for cutoff in cutoffs:
        scores = scorer.score(data.leads, data.events, cutoff)
        repo.append_scores(scores, scored_at=cutoff.to_pydatetime())


def test_realised_conversion_per_band_agrees_with_the_simulators_truth(promised_year, tmp_path):
    sim, scorer, Repository, upgrade_database, monitor_store = promised_year
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_database(url)
    repo = Repository.from_url(url)
    repo.import_crm(sim.data)
    cutoffs = pd.date_range("2024-10-07", periods=18, freq="W-MON", tz=UTC)
    _store_weekly_scores(repo, scorer, sim.data, cutoffs)
    now = cutoffs[-1] + pd.Timedelta(days=91)
    report = monitor_store(repo.engine, now=now, horizon_days=90).outcomes
    assert report.weeks["final"].all() and report.weeks["waiting"].sum() == 0
    assert len(report.weeks) == 18

    # The same promises, with the simulator's truth for each: the expected wins per band.
    from leadscore.monitoring.outcomes import first_closings, score_band
    from leadscore.monitoring.outcomes import match_outcomes as match
    from leadscore.monitoring.promises import load_closings, load_history

    promises = match(weekly_promises(load_history(repo.engine)), first_closings(load_closings(repo.engine)), now, 90)
    truth = sim.truth.set_index(["lead_id", "cutoff"])["propensity"]
    promises["truth"] = pd.MultiIndex.from_frame(promises[["lead_id", "cutoff"]]).map(truth.to_dict().get)
    assert promises["truth"].notna().all(), "every promise is of a lead the simulator says was open then"
    promises["band"] = score_band(promises["probability"])
    for band, rows in promises.groupby("band"):  # the report's table is these rows, counted
        counted = report.overall_bands.set_index("band").loc[band]
        assert counted["conversions"] == rows["outcome"].sum() and counted["resolved"] == len(rows)
    # One promise per lead (its first), so that outcomes are independent: each is Bernoulli(its true probability).
    first = promises.sort_values("cutoff", kind="stable").drop_duplicates("lead_id")
    assert len(first) > 1500
    for band, rows in [*first.groupby("band"), ("all", first)]:
        expected, variance = rows["truth"].sum(), (rows["truth"] * (1 - rows["truth"])).sum()
        z = (rows["outcome"].sum() - expected) / np.sqrt(max(variance, 1e-9))
        assert abs(z) < 3.29, f"band {band}: {rows['outcome'].sum():.0f} wins against {expected:.1f} true (z = {z:.1f})"
    repo.engine.dispose()


def test_the_store_path_gives_the_report_the_frames_give(repo):
    from leadscore.monitoring.report import monitor_store

    sim = simulate(n_leads=600, n_reps=4, months=12, seed=13)
    scorer, _ = _trained(sim.data, pd.Timestamp("2024-08-01", tz=UTC), check_leakage=False)  # too few for the guard
    repo.import_crm(sim.data)
    cutoffs = pd.date_range("2024-08-05", periods=4, freq="W-MON", tz=UTC)
    frames = []
    for cutoff in cutoffs:
        scores = scorer.score(sim.data.leads, sim.data.events, cutoff)
        repo.append_scores(scores, scored_at=cutoff.to_pydatetime())
        repo.append_scores(scores.assign(probability=scores["probability"] / 2), scored_at=cutoff.to_pydatetime())
        frames.append(scores.assign(probability=scores["probability"] / 2))
    now = pd.Timestamp("2024-10-20", tz=UTC)
    stored = monitor_store(repo.engine, now=now, horizon_days=90).outcomes
    expected = pd.concat(frames, ignore_index=True)
    expected = expected.assign(id=np.arange(len(expected)), scored_at=expected["cutoff"])
    direct = outcome_report(expected, sim.data.events, now, 90)
    pd.testing.assert_frame_equal(stored.weeks, direct.weeks, check_dtype=False)
    assert stored.weeks["promises"].tolist() == [len(f) for f in frames]  # the later score of each pair counts


# ----------------------------------------------------------------------------------------------- drift


@pytest.fixture(scope="session")
def drifted():
    """20,000 leads over 21 months; from 5 March 2025 web leads convert half as often, from 4 June 2025 a
    webinar event type appears; a model trained on what was known on 1 October 2024."""
    sim = simulate(
        n_leads=20_000,
        n_reps=10,
        months=21,
        seed=3,
        drift=[SourceDrift(source="web", start="2025-03-05"), NewEventType(type="webinar", start="2025-06-04")],
    )
    scorer, reference = _trained(sim.data)
    return sim, scorer, reference


def test_a_source_converting_half_as_often_is_flagged_within_two_weekly_reports(drifted):
    sim, scorer, reference = drifted
    before, first, second = pd.date_range("2025-03-03", periods=3, freq="W-MON", tz=UTC)
    reports = weekly_drift(scorer, sim.data, reference, [before, first, second])
    assert not reports[0].alert, reports[0].reasons
    assert any("source web" in reason for r in reports[1:] for reason in r.reasons), [r.reasons for r in reports]


def test_a_new_event_type_is_flagged_in_the_first_weekly_report_after_it_appears(drifted):
    sim, scorer, reference = drifted
    before = drift_report(scorer, sim.data, reference, "2025-06-02")
    after = drift_report(scorer, sim.data, reference, "2025-06-09")
    assert not any("never seen" in reason for reason in before.reasons)
    assert after.alert and any("webinar" in reason for reason in after.reasons)
    assert after.event_types["type"].tolist() == ["webinar"]


@pytest.fixture(scope="session")
def unchanged_year():
    sim = simulate(n_leads=8000, n_reps=8, months=21, seed=8)
    scorer, reference = _trained(sim.data)
    cutoffs = pd.date_range("2024-10-07", periods=52, freq="W-MON", tz=UTC)
    return weekly_drift(scorer, sim.data, reference, cutoffs)


def test_an_unchanged_simulation_raises_no_alert_over_a_year_of_weekly_reports(unchanged_year):
    alerts = {str(r.cutoff.date()): r.reasons for r in unchanged_year if r.alert}
    assert not alerts
    assert len(unchanged_year) == 52


def test_the_drift_report_states_its_figures(unchanged_year):
    report = unchanged_year[-1]
    assert report.features["feature"].iloc[-1] == "score"
    assert set(report.features["status"]) <= {"stable", "watch", "alert"}
    assert report.features[["missing_reference", "missing_recent"]].notna().all().all()
    assert 0 <= report.unworked_share <= 1 and report.leads > 100
    d = report.to_dict()
    assert d["alert"] is False and d["thresholds"] == vars(DriftThresholds())


def test_a_store_without_scores_gives_an_empty_report():
    from leadscore.monitoring.promises import HISTORY_COLUMNS

    history = pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
    events = pd.DataFrame({"lead_id": [], "at": pd.to_datetime([], utc=True), "type": []})
    report = outcome_report(history, events, "2025-01-01", 90)
    assert report.weeks.empty and report.to_dict()["weeks"] == []
