"""`leadscore train`, `score`, `promote` and `rollback` from the command line, on a flat table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from model_fixtures import synthetic_table_with_truth
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.grades import DEFAULT_GRADE_CUTOFFS, grades

pytest_plugins = ["model_fixtures"]  # the temporary MLflow stores
runner = CliRunner()


ROWS, VALIDATION = 1500, slice(1200, None)  # rows in time order; the latest 20 % are the validation period
ORACLE_MARGIN = 0.03  # how far below the true probability's ROC AUC the trained model may rank


def write_table(path, *, leaky: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic table as a CSV export; returns each row's label and the true probability it was drawn with."""
    X, y, truth = synthetic_table_with_truth(ROWS, seed=31)
    table = X.assign(converted=np.where(y == 1, "yes", "no"), lead=[f"L{i}" for i in range(len(y))])
    if leaky:
        table["won_reason"] = np.where(y == 1, "price", "")
    table.to_csv(path, sep=";", index=False)
    return y, truth


def test_train_score_promote_and_rollback_from_the_command_line(store, tmp_path):
    table = tmp_path / "leads.csv"
    y, truth = write_table(table)
    oracle_auc = roc_auc_score(y[VALIDATION], truth[VALIDATION])
    args = ["--table", str(table), "--target", "converted", "--row-order-is-time", "--drop", "lead"]
    trained = runner.invoke(app, ["train", *args, "--candidates", "logistic,naive_bayes", "--json"])
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["promoted"] and summary["version"] == "1"
    assert set(summary["candidates"]) >= {"logistic (sigmoid)", "naive_bayes (uncalibrated)"}
    assert summary["metrics"]["roc_auc"] == pytest.approx(oracle_auc, abs=ORACLE_MARGIN)
    assert summary["later_period"]["later_ece"] == pytest.approx(summary["metrics"]["ece"])
    assert "later_ece_logistic_baseline" in summary["later_period"]

    shown = runner.invoke(app, ["train", *args, "--candidates", "logistic,naive_bayes"])
    assert shown.exit_code == 0, shown.output
    assert "Candidates on the validation period" in shown.stdout
    assert "later period, chosen against a plain logistic regression" in " ".join(shown.stdout.split())
    assert "registered as version 2 -> champion" in shown.stdout  # the same recipe on the same data: a tie

    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--table", str(table), "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(out)
    assert len(scores) == ROWS
    assert scores["grade"].tolist() == grades(scores["probability"].to_numpy(), DEFAULT_GRADE_CUTOFFS).tolist()
    assert set(scores["grade"]) == {"A", "B", "C", "D"}

    assert "version 1 is now champion" in runner.invoke(app, ["promote", "1"]).stdout
    rolled = runner.invoke(app, ["rollback"])
    assert rolled.exit_code == 0 and "champion is version 2 again" in rolled.stdout


def test_training_on_a_leaky_table_is_refused_with_the_column_named(store, tmp_path):
    table = tmp_path / "leaky.csv"
    write_table(table, leaky=True)
    refused = runner.invoke(app, ["train", "--table", str(table), "--target", "converted", "--drop", "lead"])
    assert refused.exit_code == 3
    assert "won_reason" in refused.stderr and "--allow-leaky" in refused.stderr


def test_scoring_without_a_model_says_what_to_do(store, tmp_path):
    table = tmp_path / "leads.csv"
    write_table(table)
    result = runner.invoke(app, ["score", "--table", str(table), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 2 and "leadscore train" in result.stderr
