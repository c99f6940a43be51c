"""Scheduled retraining: the rules beyond the gate, the store's lease, the job, the CLI and the service's schedule.

The lease and the job run on SQLite and PostgreSQL (``store_url``); two processes on one store retrain once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from leadscore import registry
from leadscore.model.splits import LabelledData
from leadscore.registry import GateDecision, ModelCard
from leadscore.retraining import lock
from leadscore.retraining.job import LEASE_NAME, run_due, schedule_slot
from leadscore.retraining.rules import DriftEvidence, Evidence, RetrainPolicy, decide
from leadscore.store import create_engine
from leadscore.store.tables import webhook_outbox_table
from leadscore.webhooks import subscriptions
from leadscore.webhooks.targets import TargetPolicy

pytest_plugins = ["api_fixtures", "model_fixtures"]


# --- the rules ------------------------------------------------------------------------------------------------


def _result(last_cutoff_day: float, *, cold_start: bool = False):
    """A training result as the rules read it: its data's times (days since the epoch) and horizon."""
    times = np.array([last_cutoff_day - 14, last_cutoff_day - 7, last_cutoff_day])
    data = LabelledData(
        X=pd.DataFrame({"x": [1.0, 2.0, 3.0]}),
        y=np.array([0, 1, 0]),
        times=times,
        horizon=90.0,
        kinds={"x": "numeric"},
        source="crm",
        time_kind="cutoff",
        description="weekly snapshots",
    )
    return SimpleNamespace(data=data, cold_start=cold_start)


def _card(trained_until: float) -> ModelCard:
    return ModelCard(
        source="crm",
        kinds={},
        chosen="logistic",
        calibration="sigmoid",
        cold_start=False,
        horizon_days=90.0,
        time_kind="cutoff",
        trained_until=trained_until,
        reference_quantiles=[],
        explanation="",
    )


def _refused(challenger_auc: float, champion_auc: float = 0.80) -> GateDecision:
    figures = {"challenger_roc_auc": challenger_auc, "champion_roc_auc": champion_auc}
    return GateDecision(False, "ROC AUC lower than the champion's by more than 0.005", figures)


CHAMPION_UNTIL = 20_000.0  # the champion's last label time, days since the epoch


@pytest.mark.parametrize(
    ("age_days", "challenger_auc", "drift", "policy", "rule", "promoted"),
    [
        (100, 0.790, None, RetrainPolicy(), "champion_age", True),  # old champion, bar cleared (98.75 %)
        (100, 0.780, None, RetrainPolicy(), "kept", False),  # old champion, bar missed (97.5 %)
        (80, 0.790, None, RetrainPolicy(), "kept", False),  # not old yet
        (90, 0.790, None, RetrainPolicy(), "kept", False),  # exactly at the limit is not older than it
        (100, 0.790, None, RetrainPolicy(max_champion_age_days=None), "kept", False),  # age rule off
        (100, 0.780, None, RetrainPolicy(min_auc_ratio=0.97), "champion_age", True),  # a looser bar
        (10, 0.790, DriftEvidence(True, ("psi of source 0.31",)), RetrainPolicy(), "drift", True),
        (10, 0.790, DriftEvidence(False), RetrainPolicy(), "kept", False),
        (10, 0.790, DriftEvidence(True, ("x",)), RetrainPolicy(promote_on_drift=False), "kept", False),
        (10, 0.700, DriftEvidence(True, ("x",)), RetrainPolicy(), "kept", False),  # drift never lowers the bar
    ],
)
def test_the_age_and_drift_rules_overrule_a_refusal_only_over_the_quality_bar(
    age_days, challenger_auc, drift, policy, rule, promoted
):
    result = _result(CHAMPION_UNTIL + age_days - 90)  # last cutoff + horizon = the challenger's last label time
    decision = decide(_refused(challenger_auc), result, _card(CHAMPION_UNTIL), policy, Evidence(drift=drift))
    assert (decision.rule, decision.promote) == (rule, promoted)
    assert decision.evidence["champion_age_days"] == pytest.approx(age_days)
    assert decision.evidence["auc_ratio"] == pytest.approx(challenger_auc / 0.80, abs=1e-6)
    assert decision.evidence["drift_alert"] == (None if drift is None else drift.alert)
    assert "the gate said" in decision.reason or rule == "kept"


def test_the_gate_s_own_verdict_stands_and_a_cold_start_never_clears_the_bar():
    passed = GateDecision(True, "better", {"challenger_roc_auc": 0.82, "champion_roc_auc": 0.80})
    kept = decide(passed, _result(CHAMPION_UNTIL), _card(CHAMPION_UNTIL), RetrainPolicy(), Evidence())
    assert (kept.rule, kept.promote) == ("gate", True)
    cold = decide(
        _refused(0.80),
        _result(CHAMPION_UNTIL + 200, cold_start=True),
        _card(CHAMPION_UNTIL),
        RetrainPolicy(),
        Evidence(),
    )
    assert (cold.rule, cold.promote) == ("kept", False)


def test_policy_knobs_are_checked():
    with pytest.raises(ValueError, match="min_auc_ratio"):
        RetrainPolicy(min_auc_ratio=1.5)
    with pytest.raises(ValueError, match="max_champion_age_days"):
        RetrainPolicy(max_champion_age_days=0)


# --- the lease ------------------------------------------------------------------------------------------------


def test_a_lease_is_held_by_one_then_its_slot_is_done(store_url):
    engine = create_engine(store_url)
    first = lock.acquire(engine, "job", "slot-1", ttl_s=60)
    assert first is not None and first.still_held()
    assert lock.acquire(engine, "job", "slot-1") is None
    assert lock.acquire(engine, "job", "slot-2") is None  # held, whatever the slot
    assert first.finish({"version": "3"})
    assert lock.last_done(engine, "job")["done_slot"] == "slot-1"
    assert lock.last_done(engine, "job")["outcome"] == {"version": "3"}
    assert lock.acquire(engine, "job", "slot-1") is None  # done
    second = lock.acquire(engine, "job", "slot-2")
    assert second is not None
    second.release()  # not done: the slot stays open
    assert lock.acquire(engine, "job", "slot-2") is not None
    engine.dispose()


def test_a_crashed_holder_s_lease_expires_and_the_holder_learns_it_lost_it(store_url):
    engine = create_engine(store_url)
    crashed = lock.acquire(engine, "job", "slot-1", ttl_s=0.3)  # never renewed: as if its process died
    assert crashed is not None
    assert lock.acquire(engine, "job", "slot-1") is None
    time.sleep(0.5)
    taker = lock.acquire(engine, "job", "slot-1", ttl_s=60)
    assert taker is not None
    assert not crashed.still_held() and not crashed.renew()
    assert not crashed.finish()  # it cannot mark the slot done for the new holder
    assert lock.last_done(engine, "job")["holder"] == taker.holder
    engine.dispose()


def test_a_lease_renews_itself_while_its_holder_works(store_url):
    engine = create_engine(store_url)
    with lock.acquire(engine, "job", "slot-1", ttl_s=0.6) as lease:
        time.sleep(1.5)  # over twice its time to live: the heartbeat kept it
        assert lease.still_held()
        assert lock.acquire(engine, "job", "slot-1") is None
    assert lock.acquire(engine, "job", "slot-1") is not None  # released on exit (not done)
    engine.dispose()


def test_threads_with_their_own_engines_race_and_exactly_one_wins_each_slot(store_url):
    threads_n, slots = 4, 8
    wins: dict[str, list[int]] = {f"s{k}": [] for k in range(slots)}
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def contend(i: int) -> None:
        engine = create_engine(store_url)
        try:
            for slot in wins:
                barrier.wait(timeout=60)
                lease = lock.acquire(engine, "race", slot, ttl_s=60)
                if lease is not None:
                    wins[slot].append(i)
                barrier.wait(timeout=60)  # everybody has tried before the winner lets go
                if lease is not None:
                    lease.finish()
        except BaseException as err:  # noqa: BLE001 - collected and asserted on
            errors.append(err)
            barrier.abort()
        finally:
            engine.dispose()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert [len(w) for w in wins.values()] == [1] * slots


# --- the job: the schedule's slots, two services, the CLI -------------------------------------------------------


@pytest.fixture(scope="module")
def small_crm():
    from leadscore.simulation.simulator import simulate

    return simulate(n_leads=1200, n_reps=4, months=12, seed=11, start="2024-01-01")


def test_schedule_slots_are_the_same_for_every_service_and_change_every_period():
    assert schedule_slot("2024-12-01T00:00Z", 15) == schedule_slot("2024-12-05T23:00Z", 15)
    slots = {schedule_slot(f"2024-12-{d:02d}T12:00Z", 15) for d in range(1, 32)}
    assert len(slots) in (2, 3)
    assert schedule_slot("2024-12-01", 15).startswith("15d@")


def test_a_slot_is_retrained_once_and_each_decision_is_recorded_with_its_rule(store_url, store, small_crm):
    engine = create_engine(store_url)
    options = dict(tracking_uri=store, candidates=("logistic",), every_days=15)
    first = run_due(engine, lambda: small_crm.data, now="2024-12-02", **options)
    assert first.ran and first.promoted and first.rule == "first"
    again = run_due(engine, lambda: small_crm.data, now="2024-12-05", **options)
    assert not again.ran and "slot is done" in again.skipped
    later = run_due(engine, lambda: small_crm.data, now="2024-12-20", **options)
    assert later.ran and later.version == "2" and later.rule in {"gate", "kept", "champion_age"}
    assert {"challenger_roc_auc", "champion_roc_auc", "champion_age_days", "trigger"} <= set(later.evidence)
    record = {d["version"]: d for d in registry.decisions(uri=store)}
    assert record["1"]["rule"] == "first" and record["2"]["rule"] == later.rule
    assert record["2"]["evidence"]["trigger"] == "schedule"
    assert record["2"]["evidence"]["champion_roc_auc"] == pytest.approx(later.evidence["champion_roc_auc"])
    assert lock.last_done(engine, LEASE_NAME)["outcome"]["version"] == "2"
    engine.dispose()


def test_a_drift_alert_retrains_within_a_done_slot_once_per_cool_down(store_url, store, small_crm):
    engine = create_engine(store_url)
    options = dict(tracking_uri=store, candidates=("logistic",), every_days=15, drift_cooldown_days=7)
    alerts = []

    def drifted(data, now):
        alerts.append(now)
        return DriftEvidence(True, ("score PSI 0.34 over 0.25",))

    assert run_due(engine, lambda: small_crm.data, now="2024-12-01", **options).ran  # the slot 2024-11-28 .. 12-13
    soon = run_due(engine, lambda: small_crm.data, now="2024-12-03", drift_check=drifted, **options)
    assert not soon.ran and "cool-down" in soon.skipped and alerts == []  # not even asked within the cool-down
    # A new slot's first tick is a scheduled retraining; within the slot, drift starts one after the cool-down.
    quiet = run_due(engine, lambda: small_crm.data, now="2024-12-13", drift_check=drifted, **options)
    assert quiet.ran and quiet.trigger == "schedule"
    calm = run_due(
        engine, lambda: small_crm.data, now="2024-12-21", drift_check=lambda d, n: DriftEvidence(False), **options
    )
    assert not calm.ran and "no drift alert" in calm.skipped
    drift = run_due(engine, lambda: small_crm.data, now="2024-12-21", drift_check=drifted, **options)
    assert drift.ran and drift.trigger == "drift" and drift.evidence["drift_alert"] is True
    assert drift.evidence["drift_reasons"] == ["score PSI 0.34 over 0.25"]
    assert registry.decisions(uri=store)[0]["evidence"]["trigger"] == "drift"
    assert registry.decisions(uri=store)[1]["evidence"]["drift_alert"] is True  # asked at the slot's first tick too
    engine.dispose()


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "leadscore", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_two_services_on_one_store_retrain_once_and_rollback_is_one_command(store_url, store, small_crm, tmp_path):
    from leadscore.store import Repository

    repo = Repository.from_url(store_url)
    repo.import_crm(small_crm.data)
    repo.engine.dispose()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store,
        "LEADSCORE_MODELS_DIR": str(tmp_path / "models"),
        "LEADSCORE_DATA_DIR": str(tmp_path),
    }
    args = ["retrain", "--if-due", "--url", store_url, "--candidates", "logistic", "--json"]
    runs = [_cli(args, env) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    assert sorted(r["ran"] for r in results) == [False, True]
    skipped = next(r for r in results if not r["ran"])
    assert skipped["skipped"] in {"another service holds the lease or did this slot", "this schedule slot is done"}
    assert len(registry.decisions(uri=store)) == 1  # one model trained and registered
    # A second run in the same slot does nothing; without --if-due it retrains now, and rollback undoes it.
    same = subprocess.run([sys.executable, "-m", "leadscore", *args], env=env, capture_output=True, timeout=600)
    assert json.loads(same.stdout.decode().splitlines()[-1])["ran"] is False
    now = subprocess.run(
        [
            sys.executable,
            "-m",
            "leadscore",
            "retrain",
            "--url",
            store_url,
            "--candidates",
            "logistic",
            "--max-champion-age-days",
            "0",
        ],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert now.returncode == 0, now.stderr.decode()[-2000:]
    assert "version 2" in now.stdout.decode()
    if "promoted" in now.stdout.decode():
        back = subprocess.run(
            [sys.executable, "-m", "leadscore", "rollback"], env=env, capture_output=True, timeout=300
        )
        assert back.returncode == 0 and "champion is version 1 again" in back.stdout.decode()
    assert registry.resolve_version(registry.CHAMPION, store) == "1"


def test_retrain_from_files_and_bad_knobs_are_refused_by_name(store, small_crm, tmp_path):
    from typer.testing import CliRunner

    from leadscore.cli import app

    small_crm.write(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(app, ["retrain", "--data", str(tmp_path), "--min-auc-ratio", "1.5"])
    assert bad.exit_code == 2 and "min_auc_ratio" in bad.output
    result = runner.invoke(app, ["retrain", "--data", str(tmp_path), "--candidates", "logistic", "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    assert outcome["ran"] and outcome["rule"] == "first" and outcome["trigger"] == "manual"


# --- the service's schedule -------------------------------------------------------------------------------------


def test_the_service_retrains_on_its_schedule_and_serves_the_new_champion(store_url, store, small_crm, make_settings):
    from fastapi.testclient import TestClient

    from leadscore.api.main import create_app
    from leadscore.store import Repository

    repo = Repository.from_url(store_url)
    repo.import_crm(small_crm.data)
    repo.engine.dispose()
    settings = make_settings(
        store_url,
        mlflow_tracking_uri=store,
        stored_scores=False,
        retrain_every_days=15,
        retrain_first_delay_seconds=0.2,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        schedule = app.state.retrain_schedule
        assert schedule is not None and schedule.next_run() is not None
        deadline = time.monotonic() + 300
        while schedule.last is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert schedule.last is not None and schedule.last.ran and schedule.last.rule == "first"
        model = client.get("/api/v1/model", headers={"X-API-Key": "read-key"}).json()
        assert str(model["version"]) == schedule.last.version  # picked up at once, not at the next poll
    assert not schedule.scheduler.running
    engine = create_engine(store_url)
    assert lock.last_done(engine, LEASE_NAME)["done_slot"] == schedule.last.slot
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT holder FROM job_leases")).scalar() is None
    engine.dispose()


def test_no_schedule_runs_unless_configured(store_url, make_settings):
    from fastapi.testclient import TestClient

    from leadscore.api.main import create_app

    app = create_app(make_settings(store_url, stored_scores=False))
    with TestClient(app):
        assert app.state.retrain_schedule is None


# --- the drift trigger, on the monitor's own report --------------------------------------------------------------


def test_the_drift_trigger_reads_the_monitor_s_report_and_an_alert_retrains_with_its_reasons(
    store_url, store, small_crm
):
    from leadscore.retraining.drift_trigger import champion_drift
    from leadscore.retraining.replay import data_until

    data = small_crm.data
    start = pd.Timestamp(schedule_slot("2024-11-01", 15).split("@")[1])
    engine = create_engine(store_url)
    options = dict(tracking_uri=store, candidates=("logistic",), every_days=15, drift_cooldown_days=7)
    allow_local = TargetPolicy(allow_private=True)
    subscriptions.create(engine, "http://127.0.0.1:9/drift", ["drift.detected"], secret="s" * 32, policy=allow_local)
    check = champion_drift(store, engine=engine)
    assert check(data_until(data, start), start) is None  # no champion yet: no evidence either way
    assert run_due(engine, lambda: data_until(data, start), now=start, **options).rule == "first"

    later = start + pd.Timedelta(days=8)  # the same slot, past the cool-down
    calm = run_due(engine, lambda: data_until(data, later), now=later, drift_check=check, **options)
    assert not calm.ran and "no drift alert" in calm.skipped
    # Web visits after the champion's training come in under a name it never saw (a CRM renaming a type).
    renamed = data.events["type"].eq("web_visit") & (data.events["at"] > start)
    drifted = data_until(data, later)
    drifted.events = data.events.assign(type=data.events["type"].mask(renamed, "site_visit"))
    drifted = data_until(drifted, later)
    evidence = check(drifted, later)
    assert evidence.alert and any("site_visit" in reason for reason in evidence.reasons)
    retrained = run_due(engine, lambda: drifted, now=later, drift_check=check, **options)
    assert retrained.ran and retrained.trigger == "drift"
    recorded = registry.decisions(uri=store)[0]["evidence"]
    assert recorded["drift_alert"] is True and any("site_visit" in r for r in recorded["drift_reasons"])
    # The alert reached the webhooks' outbox once, though the check ran twice in the week.
    with engine.connect() as conn:
        announced = conn.execute(sa.select(webhook_outbox_table.c.kind, webhook_outbox_table.c.payload)).all()
    assert [kind for kind, _ in announced] == ["drift.detected"]
    assert any("site_visit" in r for r in announced[0].payload["details"]["reasons"])
    engine.dispose()
