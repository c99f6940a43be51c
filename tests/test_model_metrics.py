"""Metrics: the same numbers as scikit-learn's where it has them, hand-checked where it does not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from leadscore.model.metrics import (
    calibration_table,
    cumulative_gain,
    evaluate,
    expected_calibration_error,
    lift_and_capture,
)

Y = np.array([0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0])
P = np.array([0.1, 0.3, 0.8, 0.2, 0.6, 0.35, 0.05, 0.4, 0.1, 0.9, 0.3, 0.2])


def test_ranking_and_probability_metrics_match_scikit_learn():
    m = evaluate(Y, P)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, P))
    assert m["pr_auc"] == pytest.approx(average_precision_score(Y, P))
    assert m["log_loss"] == pytest.approx(log_loss(Y, P))
    assert m["brier"] == pytest.approx(brier_score_loss(Y, P))
    assert m["base_rate"] == pytest.approx(4 / 12)
    assert m["n"] == 12


def test_expected_calibration_error_by_hand():
    # Two equal-count bins: low half predicts 0.1 and converts 1 of 4; high half predicts 0.7 and converts 3 of 4.
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.7, 0.7, 0.7, 0.7])
    expected = 0.5 * abs(0.1 - 0.25) + 0.5 * abs(0.7 - 0.75)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(expected)


def test_perfectly_calibrated_bins_have_zero_error():
    y = np.array([0, 1, 0, 1, 1, 1, 1, 0])
    p = np.array([0.5, 0.5, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75])
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.0)
    assert expected_calibration_error(y, p, n_bins=4, strategy="uniform") == pytest.approx(0.0)


def test_lift_and_capture_of_the_top_fifth():
    # 12 leads, 4 conversions; the top 3 by score (0.9, 0.8, 0.6) are all conversions.
    lift, capture = lift_and_capture(Y, P, 0.2)
    assert capture == pytest.approx(3 / 4)
    assert lift == pytest.approx((3 / 3) / (4 / 12))
    m = evaluate(Y, P)
    assert m["lift_top20"] == pytest.approx(lift) and m["capture_top20"] == pytest.approx(capture)


def test_calibration_table_deciles_cover_every_example():
    rng = np.random.default_rng(0)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    table = calibration_table(y, p)
    assert len(table) == 10
    assert table["n"].sum() == 1000 and table["positives"].sum() == y.sum()
    assert table["mean_predicted"].is_monotonic_increasing
    # With ties everywhere, the bins still hold equal counts.
    assert calibration_table(y, np.full(1000, 0.3))["n"].tolist() == [100] * 10


def test_cumulative_gain_runs_from_nothing_to_everything():
    gain = cumulative_gain(Y, P)
    assert gain["captured"].iloc[0] == 0 and gain["captured"].iloc[-1] == pytest.approx(1.0)
    assert gain["captured"].is_monotonic_increasing


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="y_true has 3 values but y_prob has 2"):
        evaluate([0, 1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="probabilities in"):
        evaluate([0, 1], [0.1, 1.2])
    with pytest.raises(ValueError, match="only 0 and 1"):
        evaluate([0, 2], [0.1, 0.2])


def test_single_class_gives_nan_auc_not_an_error():
    m = evaluate([0, 0, 0], [0.1, 0.2, 0.3])
    assert np.isnan(m["roc_auc"]) and np.isnan(m["lift_top10"])
