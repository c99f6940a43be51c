"""Training: honest time-ordered validation, calibration away from the validation period, leaks, cold start."""

from __future__ import annotations

import numpy as np
import pytest
from model_fixtures import labelled
from scipy.special import logit

from leadscore.model.calibration import TimeCalibratedClassifier, fit_platt
from leadscore.model.candidates import LogOddsBlend, make_candidates, naive_bayes_pipeline
from leadscore.model.leakage import LeakageError, find_leaky_columns
from leadscore.model.metrics import expected_calibration_error
from leadscore.model.naive_bayes import FrequencyNaiveBayes
from leadscore.model.splits import time_split
from leadscore.model.training import LOG_LOSS_TIE, MIN_CLASS_COUNT, CandidateResult, choose, train


def test_time_ordered_split_never_leaks():
    rng = np.random.default_rng(0)
    cutoffs = np.repeat(np.arange(0, 7 * 60, 7), rng.integers(20, 40, 60)).astype(float)  # weekly snapshots
    split = time_split(cutoffs, horizon=90.0, fraction=0.2)
    train_t, valid_t = cutoffs[split.train], cutoffs[split.valid]
    assert train_t.max() < valid_t.min()  # no validation snapshot earlier than a training one
    assert (train_t + 90.0 <= valid_t.min()).all()  # no training label decided inside the validation period
    assert split.time_ordered
    # Exactly the training snapshots whose label window reaches past the validation start are purged.
    overlapping = (cutoffs < split.valid_start) & (cutoffs + 90.0 > split.valid_start)
    assert split.purged == overlapping.sum() == len(cutoffs) - len(split.valid) - len(split.train)
    assert split.purged >= 12 * 20  # 90 days are 12 or 13 weekly snapshots of at least 20 leads
    assert len(split.valid) == pytest.approx(0.2 * len(cutoffs), rel=0.15)


def test_the_same_lead_is_never_on_both_sides_at_overlapping_times():
    # Lead "a" is open in every week; its snapshots either end their label window before validation starts
    # or are validation snapshots.
    cutoffs = np.arange(0.0, 700.0, 7.0)
    split = time_split(cutoffs, horizon=30.0)
    windows = [(t, t + 30.0) for t in cutoffs[split.train]]
    assert all(end <= split.valid_start for _, end in windows)


def test_random_split_only_without_time_and_it_says_so():
    y = np.array([0, 1] * 100)
    split = time_split(None, y=y)
    assert not split.time_ordered and "random split" in split.describe()
    assert y[split.valid].mean() == pytest.approx(0.5)


def test_calibration_is_fitted_on_the_latest_training_slice_only():
    data = labelled(3000, seed=1)
    # Two copies of the strongest column: naive Bayes counts its evidence three times, so it is overconfident.
    X = data.X.assign(calls_again=data.X["calls"], calls_once_more=data.X["calls"])
    naive = naive_bayes_pipeline({**data.kinds, "calls_again": "numeric", "calls_once_more": "numeric"})
    model = TimeCalibratedClassifier(naive, method="sigmoid", calibration_fraction=0.25).fit(
        X[:2000], data.y[:2000], times=data.times[:2000]
    )
    held_out = slice(2000, 3000)
    raw = model.estimator_.predict_proba(X[held_out])[:, 1]
    calibrated = model.predict_proba(X[held_out])[:, 1]
    assert 0 < model.slope_ < 0.5  # the tripled evidence is shrunk (0.33 measured), never turned around
    # Platt scaling on the latest training examples fixes most of the miscalibration (0.136 -> 0.031 measured).
    y = data.y[held_out]
    assert expected_calibration_error(y, calibrated) < 0.5 * expected_calibration_error(y, raw)
    # The classifier was refitted on all 2000 examples after calibrating.
    assert model.estimator_.named_steps["model"].class_count_.sum() == 2000


def test_platt_never_turns_a_ranking_upside_down():
    a, _ = fit_platt(np.array([2.0, 1.0, -1.0, -2.0]), np.array([0, 0, 1, 1]))
    assert a == 0.0


def test_candidates_are_compared_on_the_same_period_and_the_best_log_loss_is_refitted_on_everything():
    data = labelled(3000, seed=2)
    result = train(data, check_leakage=False)
    table = result.table()
    assert set(table["candidate"]) == {"logistic", "gradient_boosting", "naive_bayes", "blend"}
    assert (table["n"] == len(result.split.valid)).all()
    assert result.chosen.metrics["log_loss"] <= table["log_loss"].min() + LOG_LOSS_TIE
    assert table["chosen"].sum() == 1
    # The final model has the chosen settings and was refitted on all 3000 examples.
    final = result.model
    assert type(final) is type(result.chosen.model)
    members = final.estimators_ if isinstance(final, LogOddsBlend) else [final]
    for member in members:
        assert member.method == result.chosen.calibration
        assert rows_seen(member.estimator_) == 3000


def rows_seen(pipeline) -> int:
    """How many examples a fitted candidate pipeline was fitted on."""
    steps = pipeline.named_steps
    if "scale" in steps:
        return int(steps["scale"].n_samples_seen_)
    if isinstance(steps["model"], FrequencyNaiveBayes):
        return int(steps["model"].class_count_.sum())
    return int(steps["model"]._predictors[0][0].nodes["count"][0])  # the first tree's root


def test_a_log_loss_tie_goes_to_the_better_calibrated_variant():
    def variant(calibration, log_loss, ece):
        metrics = {"log_loss": log_loss, "ece": ece}
        return CandidateResult(
            name="logistic",
            calibration=calibration,
            metrics=metrics,
            probabilities=np.array([]),
            seconds=0.0,
            model=None,
        )

    raw, calibrated, other = variant("none", 0.25910, 0.012), variant("sigmoid", 0.25912, 0.010), variant("x", 0.3, 0)
    assert choose([raw, calibrated, other]) is calibrated
    assert choose([variant("none", 0.2500, 0.012), calibrated]).calibration == "none"


def test_a_planted_leaky_column_is_refused_by_name():
    data = labelled(2000, seed=3)
    data.X = data.X.assign(won_reason=np.where(data.y == 1, "price", None))
    data.kinds = {**data.kinds, "won_reason": "categorical"}
    with pytest.raises(LeakageError, match="won_reason") as caught:
        train(data)
    assert {leak.column for leak in caught.value.leaks} == {"won_reason"}
    assert "--allow-leaky" in str(caught.value)
    allowed = train(data, allow_leaky=True, candidates=["naive_bayes"])
    assert any("won_reason" in note for note in allowed.notes)


def test_a_column_that_adds_most_of_the_signal_is_flagged():
    data = labelled(3000, seed=4, strength=0.3)
    rng = np.random.default_rng(4)
    # Like a call duration recorded after the sale: noisy alone, but information no other column has.
    duration = np.where(data.y == 1, rng.gamma(6.0, 60.0, len(data)), rng.gamma(2.0, 60.0, len(data)))
    data.X = data.X.assign(duration=duration)
    data.kinds = {**data.kinds, "duration": "numeric"}
    leaks = find_leaky_columns(data.X, data.y, data.kinds)
    assert [leak.column for leak in leaks] == ["duration"]
    assert "beyond all other columns" in leaks[0].rule


def test_honest_columns_pass_the_guard():
    data = labelled(3000, seed=5)
    assert find_leaky_columns(data.X, data.y, data.kinds) == []


def test_cold_start_with_few_conversions_gives_a_provisional_smoothed_model():
    data = labelled(2000, seed=6)
    keep = np.concatenate([np.flatnonzero(data.y == 1)[: MIN_CLASS_COUNT - 5], np.flatnonzero(data.y == 0)[:500]])
    small = data.subset(np.sort(keep))
    result = train(small)
    assert result.cold_start and result.chosen is None and result.split is None
    assert any("provisional" in note for note in result.notes)
    nb = result.model.estimator_.named_steps["model"]
    assert isinstance(nb, FrequencyNaiveBayes) and (nb.evidence_weight, nb.alpha, nb.n_bins) == (0.5, 5.0, 4)
    p = result.model.predict_proba(small.X)[:, 1]
    assert ((p > 0) & (p < 1)).all()
    # Smoothed and tempered: near the base rate, its log-odds spread under half a plain naive Bayes' (0.28 and
    # 0.87 measured).
    assert p.mean() == pytest.approx(small.y.mean(), rel=0.25)
    plain = naive_bayes_pipeline(small.kinds).fit(small.X, small.y).predict_proba(small.X)[:, 1]
    assert logit(p).std() < 0.5 * logit(plain).std()


def test_one_class_only_is_an_error():
    data = labelled(500, seed=7)
    only_negatives = data.subset(np.flatnonzero(data.y == 0))
    with pytest.raises(ValueError, match="all .* examples are unconverted"):
        train(only_negatives)


def test_make_candidates_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown candidate"):
        make_candidates({"x": "numeric"}, ["xgboost"])


def test_lead_attributes_read_as_text_are_typed_like_a_flat_table():
    from leadscore.data.contracts import CrmData
    from leadscore.model.training import training_data_from_crm
    from leadscore.simulation.simulator import simulate

    data = simulate(n_leads=300, n_reps=3, months=7, seed=2).data
    leads = data.leads.assign(
        company_size=data.leads["company_size"].astype(str), crm_ref=[f"R{i:06d}" for i in range(len(data.leads))]
    )
    labelled = training_data_from_crm(CrmData(leads=leads, events=data.events), horizon_days=30)
    assert labelled.kinds["attr_company_size"] == "numeric"  # a CSV export's "2986", not 2,947 categories
    assert labelled.kinds["attr_segment"] == "categorical" and labelled.kinds["email_replied_30d"] == "numeric"
    assert "attr_crm_ref" not in labelled.X.columns and any("crm_ref" in note for note in labelled.notes)
    assert labelled.time_kind == "cutoff" and labelled.horizon == 30


def _with_custom_fields(data, n_fields: int, seed: int = 0):
    """``data`` with ``n_fields`` sparse noise fields (each filled for 1-20 % of leads), one sparse field that
    tells the outcome apart ("tier": 30 % of leads) and attributes named like features, keys and the label."""
    from leadscore.data.contracts import CrmData

    rng = np.random.default_rng(seed)
    leads = data.leads.copy()
    n = len(leads)
    won = set(data.events.loc[data.events["type"] == "won", "lead_id"])
    filled = rng.random(n) < 0.3
    tier = np.where(leads["lead_id"].isin(won), "gold", "basic")
    leads["tier"] = np.where(filled, tier, None)
    for i in range(n_fields):
        share = rng.uniform(0.01, 0.2)
        leads[f"custom_{i}"] = np.where(rng.random(n) < share, rng.choice(["a", "b", "c"], n), None)
    for name in ("stage", "label", "cutoff", "email_sent_7d"):
        leads[name] = rng.choice(["proposal", "x", "y"], n)
    return CrmData(leads=leads, events=data.events)


def test_a_model_reads_a_bounded_stated_selection_of_sparse_custom_fields():
    from leadscore.model.attribute_selection import AttributeSelection
    from leadscore.model.training import training_data_from_crm
    from leadscore.simulation.simulator import simulate

    data = _with_custom_fields(simulate(n_leads=400, n_reps=3, months=8, seed=3).data, n_fields=60)
    settings = AttributeSelection(max_attributes=5, min_coverage=0.1)
    labelled = training_data_from_crm(data, horizon_days=30, attributes=settings)

    selection = labelled.choices["attributes"]
    chosen = selection["chosen"]
    attributes = [c for c in labelled.X.columns if c.startswith("attr_")]
    assert len(chosen) == 5 and "tier" in chosen
    assert sorted(attributes) == sorted(f"attr_{name}" for name in chosen)  # only the chosen are ever built
    rows = {row["name"]: row for row in selection["attributes"]}
    assert len(rows) == 60 + 1 + 4 + 5  # every attribute of the data is accounted for
    assert all(row["reason"].startswith("coverage below") for row in rows.values() if row["coverage"] < 0.1)
    assert selection["settings"] == {"max_attributes": 5, "min_coverage": 0.1, "max_p_value": 1.0}
    assert any(note.startswith("lead attributes: 5 of 70 used") for note in labelled.notes)
    assert (
        training_data_from_crm(data, horizon_days=30, attributes=AttributeSelection(max_attributes=0))
        .X.columns.str.startswith("attr_")
        .sum()
        == 0
    )


def test_attributes_named_like_features_keys_or_the_label_train_and_score_by_their_own_names():
    from leadscore.model.attribute_selection import AttributeSelection
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.registry.card import model_card
    from leadscore.serving.scorer import Scorer
    from leadscore.simulation.simulator import simulate

    data = _with_custom_fields(simulate(n_leads=400, n_reps=3, months=8, seed=4).data, n_fields=0)
    keep = AttributeSelection(max_attributes=10, min_coverage=0.0)
    labelled = training_data_from_crm(data, horizon_days=30, attributes=keep)
    assert {"attr_stage", "attr_label", "attr_cutoff", "attr_email_sent_7d"} <= set(labelled.X.columns)
    assert {"stage", "email_sent_7d"} <= set(labelled.X.columns)  # the features themselves, untouched

    result = train(labelled, candidates=["logistic"], check_leakage=False)
    card = model_card(result)
    scorer = Scorer(result.model, card)
    cutoff = data.events["at"].max()
    scores = scorer.score(data.leads, data.events, cutoff)

    assert len(scores) and scores["probability"].between(0, 1).all()
    assert {"stage", "label", "cutoff", "email_sent_7d", "tier"} <= set(scorer.attributes)
    assert set(card.attributes) == set(labelled.choices["attributes"]["chosen"])
    reasons = [r for rs in scores["reasons_up"].tolist() + scores["reasons_down"].tolist() for r in rs]
    assert not any("attr_" in r or "attr " in r for r in reasons)  # said by the CRM's names, never the prefix


def test_a_model_of_catalogue_1_0_with_bare_attribute_names_still_scores_its_attributes():
    from dataclasses import replace

    from leadscore.features.builder import build_features
    from leadscore.model.training import train, training_data_from_crm
    from leadscore.registry.card import model_card
    from leadscore.serving.scorer import Scorer
    from leadscore.simulation.simulator import simulate

    data = simulate(n_leads=400, n_reps=3, months=8, seed=6).data
    labelled = training_data_from_crm(data, horizon_days=30)
    bare = {c: c.removeprefix("attr_") for c in labelled.X.columns}  # how catalogue 1.0 named attributes
    old = replace(labelled, X=labelled.X.rename(columns=bare), kinds={bare[k]: v for k, v in labelled.kinds.items()})
    result = train(old, candidates=["logistic"], check_leakage=False)
    scorer = Scorer(result.model, model_card(result))
    cutoff = data.events["at"].max()

    scores = scorer.score(data.leads, data.events, cutoff)
    by_hand = build_features(data.leads, data.events, cutoff).rename(columns=bare)
    expected = scorer.score_features(by_hand)

    assert "segment" in scorer.attributes and "segment" in scorer.features
    np.testing.assert_allclose(scores["probability"], expected["probability"])
