"""Scoring from the store as of a cutoff: storing what happened after the cutoff changes no score.

The store keeps timestamps to the microsecond, so the histories here are on a microsecond grid (see
``pit_histories``); the feature builder's own tests cover the nanosecond scale. One small model, trained once
for the module without MLflow (a scorer needs only the fitted pipeline and its card).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pit_histories as pit
import pytest

from leadscore.features.builder import build_features
from leadscore.serving.prioritize import features_for, score_open_leads
from leadscore.serving.scorer import Scorer

pytest_plugins = ["api_fixtures"]

T = pit.T0.floor("us")
US = pd.Timedelta(1, "us")


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.registry import model_card
    from leadscore.simulation.simulator import simulate

    data = simulate(n_leads=300, n_reps=3, months=10, seed=5).data
    result = train(training_data_from_crm(data, horizon_days=60), candidates=["logistic"], check_leakage=False)
    return Scorer(result.model, model_card(result))


def _stored_scores(repo, scorer: Scorer, t: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manager's list (the leads open at t, from the store) and each lead scored alone, as the API does."""
    listed = score_open_leads(scorer, repo.load_crm(open_at=t.to_pydatetime()), t, follow_up_days=14)
    alone = []
    for lead_id in repo.load_leads()["lead_id"]:
        features, _ = features_for(scorer, repo.load_leads([lead_id]), repo.load_events([lead_id]), t)
        alone.append(scorer.score_features(features, percentile_of="reference"))
    return listed, pd.concat(alone, ignore_index=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_storing_events_after_the_cutoff_changes_no_stored_score(repo, scorer, seed):
    leads, events = pit.history(seed, n_leads=6, per_lead=40, t=T, resolution="us", closing_rate=0.05)
    rng = np.random.default_rng(seed)
    t = T if seed == 1 else pit.cutoff_on_events(rng, events, "before", unit=1_000)  # 1 us before an event
    # A lead created a microsecond after t, and the first and last open leads won and lost a microsecond after it.
    late = pd.DataFrame({"lead_id": ["LATE"], "created_at": [t + US], "source": ["web"]})
    future = pit.future_events(rng, pd.concat([leads, late]), t, 80, resolution="us")
    future = future[future["lead_id"] != "GHOST"]
    closing = pd.DataFrame(
        {"lead_id": [leads["lead_id"].iloc[0], leads["lead_id"].iloc[-1]], "at": [t + US] * 2, "type": ["won", "lost"]}
    )
    known = pit.known_part(events, t)
    later = pd.concat([events[events["at"] > t], future, closing], ignore_index=True)
    repo.ingest(leads=leads, events=pit.with_ids(known))
    listed, alone = _stored_scores(repo, scorer, t)
    assert len(listed) >= 2

    repo.ingest(leads=late, events=pit.with_ids(later).assign(event_id=lambda f: "future-" + f["event_id"]))
    assert repo.count("events") == len(known) + len(later)
    listed_after, alone_after = _stored_scores(repo, scorer, t)
    pd.testing.assert_frame_equal(listed_after, listed)
    pd.testing.assert_frame_equal(alone_after, alone)
    # And the store's answer is the in-memory builder's on the whole history.
    everything = pd.concat([known, later], ignore_index=True)
    in_memory, _ = features_for(scorer, pd.concat([leads, late], ignore_index=True), everything, t)
    assert sorted(in_memory["lead_id"]) == sorted(listed["lead_id"])


def test_an_event_a_nanosecond_after_the_cutoff_is_not_known_from_the_store(repo):
    # The store keeps microseconds; rounding an event's time down would make one 1 ns after t known at t.
    one = pd.Timedelta(1, "ns")
    leads = pd.DataFrame(
        {"lead_id": ["a", "b", "late"], "created_at": [T - pd.Timedelta(days=1)] * 2 + [T + one], "source": "web"}
    )
    events = pd.DataFrame(
        {
            "event_id": ["1", "2", "3", "4"],
            "lead_id": ["a", "a", "b", "late"],
            "at": [T, T + one, T + one, T + one],
            "type": ["call", "call", "won", "call"],
        }
    )
    repo.ingest(leads=leads, events=events)
    data = repo.load_crm(open_at=T.to_pydatetime())
    assert sorted(data.leads["lead_id"]) == ["a", "b"]  # b is won 1 ns after t: still open at t; late is not yet
    features = build_features(data.leads, data.events, T).set_index("lead_id")
    assert features.loc["a", "call_total"] == 1  # the call at t counts, the one 1 ns later does not
    assert features.loc["b", "interactions_total"] == 0
