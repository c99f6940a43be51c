"""The later period's calibration pair: what it compares, on which rows, and the calibration slope it reports."""

from __future__ import annotations

import numpy as np
import pytest
from model_fixtures import labelled
from scipy.special import expit

from leadscore.model.candidates import plain_logistic_pipeline
from leadscore.model.later_period import compare_later_period, later_figures
from leadscore.model.metrics import calibration_slope, evaluate
from leadscore.model.training import train


def test_the_calibration_slope_reads_how_far_predictions_are_spread():
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 1.5, 40_000)
    y = (rng.random(z.size) < expit(z)).astype(int)
    assert calibration_slope(y, expit(z))[0] == pytest.approx(1.0, abs=0.05)  # the truth
    assert calibration_slope(y, expit(2 * z))[0] == pytest.approx(0.5, abs=0.03)  # too sure
    assert calibration_slope(y, expit(z / 2))[0] == pytest.approx(2.0, abs=0.1)  # too timid
    slope, intercept = calibration_slope(y, expit(z - 1.0))  # too low by one unit of log-odds
    assert slope == pytest.approx(1.0, abs=0.05) and intercept == pytest.approx(1.0, abs=0.05)
    assert np.isnan(calibration_slope(y, np.full(y.size, 0.3))).all()  # nothing to fit


def test_training_with_time_reports_the_pair_on_the_validation_rows():
    data = labelled(2500, seed=5)
    result = train(data, candidates=["logistic", "gradient_boosting"], check_leakage=False)
    later = result.later_period
    holdout, earlier = result.holdout, result.train_part
    assert later["later_n"] == len(holdout.y)
    # Ours: the chosen variant's validation figures; the baseline: fitted on the earlier examples only.
    assert later["later_ece"] == pytest.approx(result.chosen.metrics["ece"])
    assert later["later_log_loss"] == pytest.approx(result.chosen.metrics["log_loss"])
    baseline = plain_logistic_pipeline(data.kinds).fit(earlier.X, earlier.y).predict_proba(holdout.X)[:, 1]
    assert later["later_ece_logistic_baseline"] == pytest.approx(evaluate(holdout.y, baseline)["ece"])
    slope = calibration_slope(holdout.y, baseline)[0]
    assert later["later_calibration_slope_logistic_baseline"] == pytest.approx(slope)
    assert result.metrics()["later_period"] == later


def test_without_time_there_is_no_later_period():
    data = labelled(2500, seed=5)
    data.times, data.time_kind = None, "none"
    assert train(data, candidates=["logistic"], check_leakage=False).later_period == {}


def test_the_pair_compares_the_same_rows():
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    good = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.2, 0.6])
    pairs = compare_later_period(y, good, np.full(y.size, 0.5))
    assert pairs["later_log_loss"] < pairs["later_log_loss_logistic_baseline"]
    assert pairs["later_ece"] == later_figures(y, good)["ece"]
    assert np.isnan(pairs["later_calibration_slope_logistic_baseline"])  # a constant has no slope
