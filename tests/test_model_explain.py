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


# ------------------------------------------------------------------ reasons grouped by what a salesperson sees


@pytest.fixture(scope="module")
def crm_model():
    """A logistic model on a small simulated CRM, and the features of its open leads at a late cutoff."""
    from leadscore.features.builder import build_features
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.simulation.simulator import simulate

    data = simulate(n_leads=900, n_reps=4, months=12, seed=5).data
    model = train(training_data_from_crm(data), candidates=["logistic"], check_leakage=False).model
    features = build_features(data.leads, data.events, "2024-11-15")
    return model, features[list(model.feature_names_in_)]


def test_the_windows_of_one_count_are_one_reason_said_once():
    from leadscore.features.catalogue import describe
    from leadscore.features.phrases import reason_topic

    values = pd.DataFrame(
        {
            "meeting_held_total": [9],
            "meeting_held_90d": [9],
            "interactions_total": [1],
            "interactions_90d": [1],
            "source": ["web"],
        }
    )
    contributions = Contributions(
        values=pd.DataFrame(
            {
                "meeting_held_total": [0.9],
                "meeting_held_90d": [-0.6],
                "interactions_total": [0.3],
                "interactions_90d": [-0.5],
                "source": [0.05],
            }
        ),
        baseline=-1.0,
        exact=True,
        method="example",
    )
    up, down = top_reasons(contributions, values, describe, topic=reason_topic)
    # Without topics: "9 meetings held so far" up and "9 meetings held in the last 90 days" down, the case.
    assert top_reasons(contributions, values, describe)[1][0][0] == "9 meetings held in the last 90 days"
    assert up == [["9 meetings held so far", "source: web"]]  # net +0.3, said by the member pushing up
    assert down == [["1 interaction in the last 90 days"]]  # net -0.2, said by the member pushing down


def test_topic_contributions_still_add_up_to_the_models_log_odds(crm_model):
    from leadscore.features.phrases import reason_topic
    from leadscore.model.explain import by_topic

    model, X = crm_model
    contributions = explain(model, X)
    grouped = by_topic(contributions, reason_topic)
    assert grouped.values.shape[1] < contributions.values.shape[1]  # windows and rates were merged
    assert grouped.log_odds == pytest.approx(model.decision_function(X), abs=1e-9)
    assert grouped.log_odds == pytest.approx(contributions.log_odds, abs=1e-12)


def test_no_lead_shows_one_fact_as_a_reason_both_up_and_down(crm_model):
    from leadscore.features.phrases import reason_topic

    model, X = crm_model
    contributions = explain(model, X)
    by_name = lambda name, value: name  # noqa: E731 - the reason's feature, to find its topic
    ungrouped_up, ungrouped_down = top_reasons(contributions, X, by_name, top=5)
    clashes = sum(
        bool({reason_topic(n) for n in u} & {reason_topic(n) for n in d})
        for u, d in zip(ungrouped_up, ungrouped_down, strict=True)
    )
    assert clashes > 0  # the model does weigh windows of one count against each other

    up, down = top_reasons(contributions, X, by_name, top=5, topic=reason_topic)
    for ups, downs in zip(up, down, strict=True):
        assert not {reason_topic(n) for n in ups} & {reason_topic(n) for n in downs}
        assert len({reason_topic(n) for n in ups}) == len(ups)  # each fact said once


def test_every_catalogue_feature_is_said_in_spanish():
    from leadscore.features.catalogue import CONTEXT_FEATURES, feature_names, feature_spec
    from leadscore.features.phrases import is_spoken

    names = feature_names(["webinar"]) + list(CONTEXT_FEATURES)
    for name in names:
        say = feature_spec(name).say
        # Every English word the feature was given (its closure's strings) has its Spanish words.
        given = [c.cell_contents for c in (say.__closure__ or ()) if isinstance(c.cell_contents, str)]
        unsaid = [text for text in given if not is_spoken(text, "es")]
        assert not unsaid, f"{name}: no Spanish for {unsaid}"
        for value in (0, 1, 2.5, 40.0, float("nan"), None):
            try:
                english, spanish = say(value), say(value, lang="es")
            except (TypeError, ValueError):  # a categorical feature given a number it never holds
                continue
            assert spanish and (spanish != english or name == "stage_rank_max")


def test_reasons_group_thousands_the_readers_way():
    from leadscore.features.catalogue import feature_spec

    deal = feature_spec("deal_amount").say
    assert deal(36100.0) == "deal worth 36,100" and deal(36100.0, lang="es") == "operación de 36.100"
    assert deal(950.0) == "deal worth 950" and deal(1234567.0) == "deal worth 1,234,567"
    assert feature_spec("interactions_total").say(1250.0) == "1,250 interactions so far"
    assert feature_spec("interactions_total").say(1250.0, lang="es") == "1.250 interacciones hasta ahora"
    hours = feature_spec("email_reply_hours_mean").say
    assert hours(1234.56) == "replies after 1,234.6 hours on average"
    assert hours(1234.56, lang="es") == "responde tras 1.234,6 horas de media"


def test_spanish_reasons_write_numbers_the_spanish_way():
    from leadscore.features.catalogue import feature_spec

    assert feature_spec("email_reply_rate").say(0.4, lang="es") == "40\u00a0% de los correos respondidos"
    assert feature_spec("deal_amount").say(12500.0, lang="es") == "operación de 12.500"
    assert feature_spec("call_minutes_mean").say(4.25, lang="es") == "las llamadas duran 4,2 minutos de media"
    assert feature_spec("stage").say("proposal", lang="es") == "en la etapa propuesta"
    assert feature_spec("days_since_last_interaction").say(1.0, lang="es") == "última interacción hace 1 día"
    with pytest.raises(ValueError, match="language 'fr'"):
        feature_spec("stage").say("new", lang="fr")
