"""The leakage guard on the tables real exports look like: post-outcome status columns are caught, strong honest
columns are not, and the guard's decision and evidence are in the MLflow run.

The simulator's flat export (:mod:`leadscore.simulation.flat_export`) carries a rep-maintained ``lead_status`` and
a hindsight ``lead_quality`` grade, both written once the lead is won or lost, and an honest but strong
``fit_score`` known when the lead is created. Rules 1 to 3 miss the first two (their AUCs alone are about 0.93, and
the two hide each other from the with/without comparison); rule 4 ("values that settle the outcome") is the one
that must catch them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from model_fixtures import labelled
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.model.flat_table import load_flat_table
from leadscore.model.leakage import (
    SETTLED_HINT_DISCOUNT,
    SETTLED_SHARE,
    LeakageError,
    check_columns,
    status_word,
)
from leadscore.model.training import train
from leadscore.simulation.simulator import simulate

pytest_plugins = ["model_fixtures"]  # the temporary MLflow stores

POST_OUTCOME = ["lead_quality", "lead_status"]


@pytest.fixture(scope="module")
def export() -> pd.DataFrame:
    """The simulator's flat lead export: 6,000 leads over a year."""
    return simulate(n_leads=6_000, n_reps=6, months=12, seed=1).flat_table(seed=1)


def _labelled(table: pd.DataFrame, drop=()):
    drop = ["lead_id", *drop]
    return load_flat_table("leads_flat.csv", "converted", time_column="created_at", drop=drop, frame=table)


@pytest.fixture(scope="module")
def report(export):
    data = _labelled(export)
    return check_columns(data.X, data.y, data.kinds, times=data.times)


def test_the_flat_export_has_post_outcome_columns_filled_after_close(export):
    converted = export["converted"] == "yes"
    # "closed" only for won leads; the grade only for closed (won or lost) leads; blanks for the early ones.
    assert converted[export["lead_status"] == "closed"].all()
    assert set(export["lead_status"].dropna()) == {
        "closed",
        "interested",
        "call back next week",
        "not interested",
        "lost to competitor",
    }
    assert set(export["lead_quality"].dropna()) == {"A", "B", "C", "D"}
    assert not converted[export["lead_quality"] == "D"].any()
    assert export["lead_status"].isna().mean() > 0.02 and export["lead_quality"].isna().mean() > 0.05
    latest = pd.to_datetime(export["created_at"]) >= pd.to_datetime(export["created_at"]).quantile(0.9)
    assert export.loc[latest, "lead_quality"].isna().mean() > 0.5  # recent leads are still open, so ungraded
    assert export["fit_score"].between(0, 100).all()


def test_both_post_outcome_columns_are_flagged_by_the_settled_values_rule(report):
    settled = {leak.column: leak for leak in report.leaks if leak.key == "settled_values"}
    assert sorted(settled) == POST_OUTCOME
    assert report.flagged == POST_OUTCOME
    status = str(settled["lead_status"])
    # The message names the column, the values with their shares and rates, and the hints.
    assert "'lead_status'" in status and "'closed'" in status and "'not interested'" in status
    assert "100% converted" in status and "0% converted" in status and "(not settled)" in status
    assert "named like a status ('status')" in status and "mostly the latest" in status
    checks = {c.column: c for c in report.checks}
    for column in POST_OUTCOME:
        assert checks[column].settled_share >= checks[column].settled_threshold
        assert checks[column].flagged_by == ("settled_values",)  # the older rules missed them, as in the issue
        assert checks[column].single_auc < 0.95


def test_the_strong_honest_column_is_not_flagged(report):
    checks = {c.column: c for c in report.checks}
    fit = checks["fit_score"]
    assert fit.flagged_by == ()
    # Strong: the best honest column on its own, well clear of the weak attributes.
    honest = [c for c in report.checks if c.column not in POST_OUTCOME]
    assert max(honest, key=lambda c: c.single_auc).column == "fit_score" and fit.single_auc > 0.74
    # No honest categorical column comes near rule 4's bar.
    for check in honest:
        if check.settled_share is not None:
            assert check.settled_share < 0.1, check


def test_without_the_post_outcome_columns_the_export_passes(export):
    data = _labelled(export, drop=POST_OUTCOME)
    assert check_columns(data.X, data.y, data.kinds, times=data.times).decision == "passed"


def test_the_name_hint_lowers_the_bar_but_is_not_required(export):
    neutral = export.rename(columns={"lead_status": "notes_1"}).drop(columns=["lead_quality"])
    data = _labelled(neutral)
    report = check_columns(data.X, data.y, data.kinds, times=data.times)
    assert [(leak.column, leak.key) for leak in report.leaks] == [("notes_1", "settled_values")]
    check = next(c for c in report.checks if c.column == "notes_1")
    assert check.status_name is None
    assert check.settled_threshold == pytest.approx(SETTLED_SHARE - SETTLED_HINT_DISCOUNT)  # the blanks' hint only


def test_status_like_names_in_english_and_spanish():
    for name, word in [
        ("Tags", "tag"),
        ("lead_status", "status"),
        ("LeadQuality", "quality"),
        ("Call Disposition", "disposition"),
        ("estado", "estado"),
        ("Calidad del lead", "calidad"),
        ("motivo_perdida", "motivo"),
        ("Resultado", "resultado"),
        ("etiquetas", "etiqueta"),
    ]:
        assert status_word(name) == word, name
    for name in ["poutcome", "percentage", "advantage_score", "company_size", "backstage_pass"]:
        assert status_word(name) is None, name


def test_a_rare_value_never_seen_converting_is_not_taken_as_settled():
    # Base rate 2 %: a value of 100 rows without a conversion is what chance gives (13 % of the time), not evidence.
    rng = np.random.default_rng(3)
    n = 20_000
    y = (rng.random(n) < 0.02).astype(int)
    region = np.array([f"region_{i}" for i in range(200)])[rng.integers(0, 200, n)]
    X = pd.DataFrame({"lead_status_region": region})
    report = check_columns(X, y, {"lead_status_region": "categorical"})
    assert report.decision == "passed" and report.checks[0].settled_share < 0.05


def test_uci_bank_duration_is_still_caught_and_the_honest_columns_are_not(shared_data):
    data = load_flat_table(shared_data / "uci_bank_marketing" / "bank-additional-full.csv", "y", row_order_is_time=True)
    report = check_columns(data.X, data.y, data.kinds, times=data.times)
    assert [(leak.column, leak.key) for leak in report.leaks] == [("duration", "beyond_others")]
    categorical = [c for c in report.checks if c.kind == "categorical"]
    assert len(categorical) >= 7 and all(c.settled_share == 0 for c in categorical)


def test_training_refuses_the_export_and_names_the_columns(export):
    with pytest.raises(LeakageError) as caught:
        train(_labelled(export), candidates=["logistic"])
    message = str(caught.value)
    assert "lead_status" in message and "lead_quality" in message and "--allow-leaky" in message
    assert "values that settle the outcome" in message and "fit_score" not in message
    assert caught.value.report.decision == "refused"


def _run(uri: str, run_id: str):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    path = client.download_artifacts(run_id, "leakage_guard.json")
    with open(path) as handle:
        return run, json.load(handle)


def test_the_guards_decision_and_evidence_are_logged_to_the_run(export, store):
    from leadscore.registry import log_training

    data = _labelled(export)
    allowed = train(data, candidates=["logistic"], allow_leaky=True)
    run, guard = _run(store, log_training(allowed, uri=store).run_id)
    assert run.data.params["leakage_guard.decision"] == "allowed"
    assert run.data.params["leakage_guard.flagged"] == "lead_quality, lead_status"
    assert run.data.metrics["leakage_guard.columns_flagged"] == 2
    assert run.data.metrics["leakage_guard.columns_checked"] == len(data.X.columns)
    assert guard["decision"] == "allowed" and guard["allowed_with_allow_leaky"] == POST_OUTCOME
    assert [c["column"] for c in guard["columns"]] == list(data.X.columns)  # every column checked
    by_column = {c["column"]: c for c in guard["columns"]}
    assert by_column["lead_status"]["flagged_by"] == ["settled_values"] and by_column["fit_score"]["flagged_by"] == []
    assert {leak["column"] for leak in guard["leaks"]} == set(POST_OUTCOME)
    assert all("converted" in leak["evidence"] for leak in guard["leaks"])

    honest = train(_labelled(export, drop=POST_OUTCOME), candidates=["logistic"])
    run, guard = _run(store, log_training(honest, uri=store).run_id)
    assert run.data.params["leakage_guard.decision"] == "passed" and guard["flagged"] == []
    assert run.data.params["leakage_guard.flagged"] == "none"


def test_a_run_without_the_guard_says_so(store):
    from mlflow import MlflowClient

    from leadscore.registry import log_training

    result = train(labelled(600, seed=2), candidates=["logistic"], check_leakage=False)
    run = MlflowClient(tracking_uri=store).get_run(log_training(result, uri=store).run_id)
    assert run.data.params["leakage_guard.decision"] == "not run"


def test_the_cli_writes_the_flat_export_and_train_refuses_it(tmp_path, store):
    out = tmp_path / "crm"
    runner = CliRunner()
    args = ["simulate", "--leads", "6000", "--reps", "6", "--months", "12", "--seed", "1", "--out", str(out)]
    made = runner.invoke(app, [*args, "--flat-table"])
    assert made.exit_code == 0, made.output
    assert "leads_flat.csv" in made.output
    table = ["--table", str(out / "leads_flat.csv"), "--target", "converted", "--time-column", "created_at"]
    refused = runner.invoke(app, ["train", *table, "--drop", "lead_id", "--candidates", "logistic"])
    assert refused.exit_code != 0
    assert "lead_status" in refused.stderr and "lead_quality" in refused.stderr and "fit_score" not in refused.stderr
