"""The simulated year's shorter version: scheduled retraining every 15 days for three months on the simulator.

The full year is ``benchmarks/retraining_year.py`` (README, "Scheduled retraining"). Here: six periods, each tick
on the data known then, the lease in a real store; every decision is recorded with its rule and figures, and the
champion's realised ROC AUC in each period is within 0.02 of the best version's available then (the issue's
target). The age rule is set to 20 days, so that any challenger the gate refuses is judged by it too.
"""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore import registry
from leadscore.retraining import lock
from leadscore.retraining.drift_trigger import champion_drift
from leadscore.retraining.job import LEASE_NAME
from leadscore.retraining.replay import simulated_year
from leadscore.retraining.rules import RetrainPolicy
from leadscore.simulation.simulator import simulate
from leadscore.store import create_engine

pytest_plugins = ["api_fixtures", "model_fixtures"]


@pytest.mark.slow
def test_a_quarter_of_scheduled_retraining_keeps_the_champion_within_0_02_of_the_best(store_url, store):
    sim = simulate(n_leads=3000, n_reps=6, months=16, seed=5, start="2024-01-01")
    engine = create_engine(store_url)
    report = simulated_year(
        sim.data,
        engine,
        start="2024-10-01",
        periods=6,
        every_days=15,
        tracking_uri=store,
        drift_check=champion_drift(store),
        candidates=("logistic",),
        policy=RetrainPolicy(max_champion_age_days=20),
    )
    assert [d["ran"] for d in report.decisions] == [True] * 6
    recorded = {d["version"]: d for d in registry.decisions(uri=store)}
    for decision in report.decisions:
        entry = recorded[decision["version"]]
        assert entry["rule"] == decision["rule"] and entry["gate"]
        if decision["rule"] != "first":
            assert {"challenger_roc_auc", "champion_roc_auc", "champion_age_days", "drift_alert"} <= set(
                entry["evidence"]
            )
    assert report.decisions[0]["rule"] == "first"
    assert {d["rule"] for d in report.decisions[1:]} <= {"gate", "champion_age", "drift", "kept"}
    assert len(report.periods) == 6 and all(p.examples > 500 and p.conversions > 30 for p in report.periods)
    assert report.max_shortfall <= 0.02, report.as_dict()["periods"]
    last = pd.Timestamp(report.decisions[-1]["at"])
    assert lock.last_done(engine, LEASE_NAME)["done_at"] == last.to_pydatetime()
    engine.dispose()
