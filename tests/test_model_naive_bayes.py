"""The frequency-table naive Bayes: a well-behaved scikit-learn estimator with exact, additive evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from leadscore.model.naive_bayes import FrequencyNaiveBayes


@parametrize_with_checks([FrequencyNaiveBayes(), FrequencyNaiveBayes(n_bins=3, alpha=0.5, evidence_weight=0.5)])
def test_follows_scikit_learn_conventions(estimator, check):
    check(estimator)


def test_laplace_smoothed_frequencies_by_hand():
    X = pd.DataFrame({"source": ["web", "web", "ads", "web"]})
    model = FrequencyNaiveBayes(alpha=1.0).fit(X, [0, 0, 1, 1])
    # Bins: ads, web, other, missing. Class 1 saw ads once and web once: (1 + 1) / (2 + 4) each.
    table = np.exp(model.feature_log_prob_[0])
    assert table[1, :2] == pytest.approx([2 / 6, 2 / 6])
    assert table[0, :2] == pytest.approx([1 / 6, 3 / 6])
    assert np.exp(model.class_log_prior_) == pytest.approx([0.5, 0.5])


def test_log_odds_contributions_add_up_to_the_decision():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"calls": rng.poisson(2, 300).astype(float), "source": rng.choice(["a", "b", "c"], 300)})
    X.loc[::7, "calls"] = np.nan
    y = (X["calls"].fillna(0) + (X["source"] == "a") + rng.normal(size=300) > 2.5).astype(int)
    model = FrequencyNaiveBayes(n_bins=4).fit(X, y)
    contributions = model.log_odds_contributions(X)
    assert model.expected_log_odds_ + contributions.sum(axis=1) == pytest.approx(model.decision_function(X))
    assert contributions.mean(axis=0) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_an_unseen_category_is_no_evidence_either_way():
    X = pd.DataFrame({"source": ["web"] * 50 + ["ads"] * 50})
    model = FrequencyNaiveBayes().fit(X, [0] * 45 + [1] * 5 + [0] * 20 + [1] * 30)
    unseen = model.log_odds_contributions(pd.DataFrame({"source": ["carrier pigeon"]}))
    prior_log_odds = model.class_log_prior_[1] - model.class_log_prior_[0]
    assert model.decision_function(pd.DataFrame({"source": ["carrier pigeon"]}))[0] == pytest.approx(prior_log_odds)
    assert unseen[0, 0] == pytest.approx(-model.feature_mean_log_ratio_[0])


def test_tempered_evidence_moves_less_from_the_prior():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.normal(size=400)})
    y = (X["x"] + rng.normal(size=400) > 0).astype(int)
    full = FrequencyNaiveBayes(evidence_weight=1.0).fit(X, y).predict_proba(X)[:, 1]
    half = FrequencyNaiveBayes(evidence_weight=0.5).fit(X, y).predict_proba(X)[:, 1]
    assert np.abs(half - y.mean()).mean() < np.abs(full - y.mean()).mean()
