"""Explanations are faithful: the contributions add up to the model's own log-odds, and read as words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_fixtures import labelled

from leadscore.model.calibration import TimeCalibratedClassifier
from leadscore.model.candidates import LogOddsBlend, make_candidates
from leadscore.model.explain import Contributions, explain, table_phrase, top_reasons
from leadscore.model.threads import limited_threads


@pytest.fixture(autouse=True, scope="module")
def one_thread_when_busy():
    """Gradient boosting's OpenMP threads crawl on a busy shared machine (see leadscore.model.threads)."""
    with limited_threads():
        yield


@pytest.fixture(scope="module")
def data():
    return labelled(2500, seed=11)


@pytest.fixture(scope="module")
def fitted(data):
    """Every candidate, calibrated with Platt scaling, fitted on the first 2000 rows."""
    return {
        name: TimeCalibratedClassifier(pipeline, method="sigmoid").fit(
            data.X[:2000], data.y[:2000], times=data.times[:2000]
        )
        for name, pipeline in make_candidates(data.kinds).items()
    }


def awkward_rows(data) -> pd.DataFrame:
    """Later rows plus missing values and a category never seen in training."""
    rows = data.X[2000:].copy()
    rows.iloc[0, rows.columns.get_loc("source")] = "carrier pigeon"
    rows.iloc[1, rows.columns.get_loc("calls")] = ""
    rows.iloc[2, rows.columns.get_loc("newsletter")] = "unknown"
    return rows


@pytest.mark.parametrize("name", ["logistic", "gradient_boosting", "naive_bayes"])
def test_contributions_add_up_to_the_calibrated_log_odds(fitted, data, name):
    model = fitted[name]
    rows = awkward_rows(data)
    contributions = explain(model, rows)
    assert contributions.exact
    assert list(contributions.values.columns) == list(data.kinds)
    assert contributions.log_odds == pytest.approx(model.decision_function(rows), abs=1e-9)
    p = model.predict_proba(rows)[:, 1]
    assert 1 / (1 + np.exp(-contributions.log_odds)) == pytest.approx(p, abs=1e-12)


def test_tree_path_attribution_reproduces_every_leaf(fitted, data):
    boosting = fitted["gradient_boosting"].estimator_
    rows = awkward_rows(data)
    contributions = explain(boosting, rows)  # the pipeline alone: uncalibrated log-odds
    assert contributions.method == "tree path attribution"
    assert contributions.log_odds == pytest.approx(boosting.decision_function(rows), abs=1e-9)


def test_logistic_contribution_is_coefficient_times_standardised_value(fitted, data):
    pipeline = fitted["logistic"].estimator_
    rows = data.X[2000:2005]
    contributions = explain(pipeline, rows)
    z = pipeline.named_steps["scale"].transform(
        pipeline.named_steps["encode"].transform(pipeline.named_steps["clean"].transform(rows))
    )
    coef = pipeline.named_steps["model"].coef_[0]
    # "visits" is the second numeric column; it has missing values, so a missing-flag column belongs to it too.
    encode = pipeline.named_steps["encode"]
    names = list(encode.get_feature_names_out())
    visit_columns = [i for i, n in enumerate(names) if n.endswith("visits")]
    assert len(visit_columns) == 2
    assert contributions.values["visits"].to_numpy() == pytest.approx(
        (z[:, visit_columns] * coef[visit_columns]).sum(1)
    )
    assert contributions.baseline == pytest.approx(pipeline.named_steps["model"].intercept_[0])


def test_a_blend_is_explained_by_the_average_of_its_members(fitted, data):
    members = [fitted["logistic"], fitted["gradient_boosting"]]
    blend = LogOddsBlend(members).set_fitted(members)
    rows = awkward_rows(data)
    contributions = explain(blend, rows)
    assert contributions.exact
    assert contributions.log_odds == pytest.approx(blend.decision_function(rows), abs=1e-9)


def test_isotonic_calibration_is_not_called_exact(data):
    pipeline = make_candidates(data.kinds, ["logistic"])["logistic"]
    model = TimeCalibratedClassifier(pipeline, method="isotonic").fit(data.X, data.y, times=data.times)
    contributions = explain(model, data.X[:5])
    assert not contributions.exact
    assert contributions.log_odds == pytest.approx(model.raw_log_odds(data.X[:5]), abs=1e-9)


def test_reasons_are_the_strongest_factors_each_way_in_words():
    values = pd.DataFrame({"calls": [5.0, 0.0], "source": ["ads", "referral"], "visits": [np.nan, 2.5]})
    contributions = Contributions(
        values=pd.DataFrame({"calls": [0.9, -0.8], "source": [-0.4, 0.6], "visits": [0.005, 0.2]}),
        baseline=-2.0,
        exact=True,
        method="example",
    )
    up, down = top_reasons(contributions, values, table_phrase, top=2)
    assert up == [["calls = 5"], ["source = referral", "visits = 2.5"]]  # 0.005 is too small to mention
    assert down == [["source = ads"], ["calls = 0"]]
    assert table_phrase("visits", np.nan) == "visits unknown"


def test_crm_reasons_use_the_catalogue_words():
    from leadscore.features.catalogue import describe

    values = pd.DataFrame({"email_replied_30d": [3], "has_next_step": [0]})
    contributions = Contributions(
        values=pd.DataFrame({"email_replied_30d": [0.7], "has_next_step": [-0.5]}),
        baseline=-1.0,
        exact=True,
        method="example",
    )
    up, down = top_reasons(contributions, values, describe)
    assert up == [["3 emails replied in the last 30 days"]]
    assert down == [["no next step scheduled"]]
