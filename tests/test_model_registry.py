"""MLflow round trip, the promotion gate both ways, rollback, cold start and the scorer, in temporary stores."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from model_fixtures import labelled

from leadscore import registry
from leadscore.grades import grades
from leadscore.model.training import MIN_CLASS_COUNT, train
from leadscore.serving.scorer import OUTPUT_COLUMNS, Scorer

pytest_plugins = ["model_fixtures"]  # the temporary MLflow stores


@pytest.fixture(scope="module")
def data():
    """The synthetic table with copies of two columns: harmless to a regression, misleading to naive Bayes."""
    data = labelled(2500, seed=21)
    data.X = data.X.assign(calls_again=data.X["calls"], calls_once_more=data.X["calls"], visits_again=data.X["visits"])
    data.kinds = {**data.kinds, "calls_again": "numeric", "calls_once_more": "numeric", "visits_again": "numeric"}
    return data


@pytest.fixture(scope="module")
def good(data):
    return train(data, candidates=["logistic"], check_leakage=False)


@pytest.fixture(scope="module")
def weak(data):
    """Uncalibrated naive Bayes counts the copied columns' evidence three times: clearly worse log loss."""
    return train(data, candidates=["naive_bayes"], calibration="none", check_leakage=False)


def test_round_trip_through_the_registry_gives_identical_probabilities(store, good, data, monkeypatch):
    outcome = registry.register(good, uri=store)
    assert outcome.promoted and outcome.reason == "no champion yet"
    client = MlflowClient(store)
    assert str(client.get_model_version_by_alias("leadscore", "champion").version) == outcome.version
    assert str(client.get_model_version_by_alias("leadscore", "challenger").version) == outcome.version
    rows = data.X[:200]
    expected = good.model.predict_proba(rows)

    model, card = registry.load_version("champion", store)
    np.testing.assert_array_equal(model.predict_proba(rows), expected)
    assert card.chosen == "logistic" and card.source == "table" and not card.cold_start

    # MLflow's own loaders (they want the deserialisation opt-in for any format, skops included).
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow.set_tracking_uri(store)
    by_alias = mlflow.sklearn.load_model("models:/leadscore@champion")
    np.testing.assert_array_equal(by_alias.predict_proba(rows), expected)
    pyfunc = mlflow.pyfunc.load_model("models:/leadscore@champion")
    # The signature types numbers as numbers: the rows as pandas reads the exported table (tests/test_model_signature).
    as_read = pd.read_csv(io.StringIO(rows.to_csv(index=False)))
    np.testing.assert_allclose(np.asarray(pyfunc.predict(as_read)), expected, rtol=1e-12)  # predict_proba: both

    info = mlflow.models.get_model_info("models:/leadscore@champion")
    assert info.signature is not None and info.flavors["sklearn"]["serialization_format"] == "skops"
    assert info.flavors["python_function"]["predict_fn"] == "predict_proba"
    run = client.get_run(outcome.run_id)
    assert run.data.params["chosen"] == "logistic"
    assert run.data.metrics["roc_auc"] == pytest.approx(good.chosen.metrics["roc_auc"])
    assert "logistic.sigmoid.ece" in run.data.metrics
    # The later period's calibration, ours and the plain logistic regression's, in the run and on the card.
    for figure in ("ece", "log_loss", "calibration_slope"):
        for key in (f"later_{figure}", f"later_{figure}_logistic_baseline"):
            assert run.data.metrics[key] == pytest.approx(good.later_period[key])
            assert card.later_period[key] == pytest.approx(good.later_period[key])
    assert run.data.metrics["later_ece"] == pytest.approx(good.chosen.metrics["ece"])  # the same later rows
    assert run.inputs.dataset_inputs, "the training data's description is logged"
    plots = {a.path for a in client.list_artifacts(outcome.run_id, "plots")}
    assert plots == {"plots/roc.png", "plots/calibration.png", "plots/gain_lift.png", "plots/importance.png"}


def test_every_type_in_a_model_is_trusted_by_name(good, weak):
    import skops.io

    for result in (good, weak):
        untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(result.model))
        assert set(untrusted) <= set(registry.SKOPS_TRUSTED_TYPES)


def test_a_model_saved_before_the_stage_folders_still_loads_and_predicts_the_same(good, weak, tmp_path):
    import io
    import zipfile

    import skops.io

    from leadscore.registry.loading import RENAMED_MODULES, read_skops_model

    old_name = {new: old for old, new in RENAMED_MODULES.items()}
    for result in (good, weak):
        saved = io.BytesIO(skops.io.dumps(result.model))
        old = io.BytesIO()
        with zipfile.ZipFile(saved) as archive, zipfile.ZipFile(old, "w") as out:
            for item in archive.infolist():
                data = archive.read(item)
                if item.filename == "schema.json":
                    text = data.decode()
                    for new, previous in old_name.items():
                        text = text.replace(f'"{new}"', f'"{previous}"')
                    assert any(f'"{previous}"' in text for previous in RENAMED_MODULES), "nothing to rename"
                    data = text.encode()
                out.writestr(item, data)
        path = tmp_path / "model.skops"
        path.write_bytes(old.getvalue())
        with pytest.raises(Exception):  # noqa: B017 - skops itself refuses the old names (untrusted or absent)
            skops.io.load(path, trusted=registry.SKOPS_TRUSTED_TYPES)
        rows = result.data.X[:50]
        np.testing.assert_array_equal(read_skops_model(path).predict_proba(rows), result.model.predict_proba(rows))


def test_a_model_with_a_type_nobody_trusts_is_still_refused(good, tmp_path):
    import fractions

    import skops.io

    from leadscore.registry.loading import read_skops_model

    path = tmp_path / "model.skops"
    path.write_bytes(skops.io.dumps({"model": good.model, "extra": fractions.Fraction(1, 3)}))
    with pytest.raises(skops.io.exceptions.UntrustedTypesFoundException):
        read_skops_model(path)


def test_gate_both_ways_then_promote_and_rollback(store, good, weak):
    first = registry.register(weak, uri=store)
    assert first.promoted

    better = registry.register(good, uri=store)
    assert better.promoted, better.reason
    assert better.comparison["challenger_log_loss"] < better.comparison["champion_log_loss"]
    assert "refitted on the challenger's training part" in better.reason

    worse = registry.register(weak, uri=store)
    assert not worse.promoted
    assert "log loss" in worse.reason and "worse than the champion's" in worse.reason
    client = MlflowClient(store)
    assert str(client.get_model_version_by_alias("leadscore", "champion").version) == better.version
    assert str(client.get_model_version_by_alias("leadscore", "challenger").version) == worse.version
    assert client.get_model_version("leadscore", worse.version).tags["gate"] == worse.reason

    assert registry.rollback(uri=store) == (better.version, first.version)
    assert str(client.get_model_version_by_alias("leadscore", "champion").version) == first.version

    assert registry.promote(worse.version, uri=store) == first.version
    assert registry.rollback(uri=store) == (worse.version, first.version)
    history = json.loads(client.get_registered_model("leadscore").tags[registry.HISTORY_TAG])
    assert history == [first.version]
    with pytest.raises(LookupError, match="nothing to roll back to"):
        registry.rollback(uri=store)


class Holdout(SimpleNamespace):
    def __len__(self) -> int:
        return len(self.y)


class FixedChampion:
    """A champion whose holdout probabilities are given: its metrics are known before the gate computes them."""

    feature_names_in_ = np.array(["x"])

    def __init__(self, p: np.ndarray):
        self.p = p

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        assert len(X) == len(self.p)
        return np.column_stack([1 - self.p, self.p])


@pytest.fixture(scope="module")
def boundary():
    """A holdout, a champion judged as deployed on it, and the champion's metrics there."""
    from leadscore.model.metrics import evaluate

    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.15, 400), 0.02, 0.98)
    holdout = Holdout(X=pd.DataFrame({"x": np.arange(400.0)}), y=y)
    card = registry.ModelCard(
        source="table", kinds={"x": "numeric"}, chosen="logistic", calibration="sigmoid", cold_start=False,
        horizon_days=0.0, time_kind="column", trained_until=100.0, reference_quantiles=[], explanation="",
    )  # fmt: skip
    return holdout, FixedChampion(p), card, evaluate(y, p)


def gate_with(boundary, log_loss: float, roc_auc: float) -> registry.GateDecision:
    """The gate's decision for a challenger whose holdout metrics are exactly ``log_loss`` and ``roc_auc``."""
    holdout, champion, card, _ = boundary
    result = SimpleNamespace(
        cold_start=False,
        holdout=holdout,
        train_part=None,  # never used: the champion was trained before the holdout (judged as deployed)
        split=SimpleNamespace(valid_start=100.0, time_ordered=True),
        chosen=SimpleNamespace(metrics={"log_loss": log_loss, "roc_auc": roc_auc}, model=None, probabilities=None),
    )
    decision = registry.compare(result, champion, card)
    assert "as deployed" in decision.reason
    return decision


def test_the_gate_tolerances_are_inclusive_and_exact_at_their_boundaries(boundary):
    """Rule: a challenger is refused only when its log loss exceeds the champion's + LOG_LOSS_TOLERANCE, or its
    ROC AUC is below the champion's - AUC_TOLERANCE; worse by exactly the tolerance (``challenger == champion +
    tolerance`` as floats) passes. Each side is met by one float step, and by 1e-9 (far below any real gain)."""
    ll, auc = boundary[3]["log_loss"], boundary[3]["roc_auc"]
    assert 0.3 < ll < 0.7 and 0.6 < auc < 0.95  # a real champion's figures, computed by the gate on its holdout
    ll_edge, auc_edge = ll + registry.LOG_LOSS_TOLERANCE, auc - registry.AUC_TOLERANCE

    exact = gate_with(boundary, ll_edge, auc_edge)
    assert exact.promote, exact.reason
    assert exact.comparison == {
        "challenger_log_loss": ll_edge,
        "champion_log_loss": ll,
        "challenger_roc_auc": auc_edge,
        "champion_roc_auc": auc,
    }
    for within in (ll_edge - 1e-9, np.nextafter(ll_edge, 0)):
        assert gate_with(boundary, within, auc).promote
    for beyond in (ll_edge + 1e-9, np.nextafter(ll_edge, 1)):
        refused = gate_with(boundary, beyond, auc)
        assert not refused.promote
        assert refused.reason.startswith("log loss") and "ROC AUC" not in refused.reason
    for within in (auc_edge + 1e-9, np.nextafter(auc_edge, 1)):
        assert gate_with(boundary, ll, within).promote
    for beyond in (auc_edge - 1e-9, np.nextafter(auc_edge, 0)):
        refused = gate_with(boundary, ll, beyond)
        assert not refused.promote
        assert refused.reason.startswith("ROC AUC") and "log loss" not in refused.reason
    both = gate_with(boundary, ll_edge + 1e-9, auc_edge - 1e-9)
    assert not both.promote and "log loss" in both.reason and "ROC AUC" in both.reason
    better = gate_with(boundary, ll - 0.01, auc + 0.01)  # better on both: promoted, of course
    assert better.promote


def test_a_champion_trained_before_the_holdout_is_judged_as_deployed(store):
    dated = labelled(2500, seed=22)
    dated.time_kind = "column"  # times are days: the champion's training end is comparable with the holdout
    early = train(dated.subset(np.arange(1500)), candidates=["logistic"], check_leakage=False)
    registry.register(early, uri=store)
    later = registry.register(train(dated, candidates=["logistic"], check_leakage=False), uri=store)
    assert "as deployed" in later.reason


def test_a_retrain_with_the_same_recipe_ties_and_is_promoted(store, good):
    registry.register(good, uri=store)
    again = registry.register(good, uri=store)
    assert again.promoted and "same recipe" in again.reason


def test_cold_start_is_registered_as_provisional_and_replaced_by_a_trained_model(store, data, good):
    keep = np.concatenate([np.flatnonzero(data.y == 1)[: MIN_CLASS_COUNT // 2], np.flatnonzero(data.y == 0)[:300]])
    cold = train(data.subset(np.sort(keep)))
    outcome = registry.register(cold, uri=store)
    assert outcome.promoted and "provisional" in outcome.reason
    assert MlflowClient(store).get_model_version("leadscore", outcome.version).tags["cold_start"] == "true"
    scorer = Scorer.from_registry("champion", store)
    assert scorer.provisional and scorer.score_features(data.X[:3])["provisional"].all()

    trained = registry.register(good, uri=store)
    assert trained.promoted and "cold-start" in trained.reason
    assert not registry.register(cold, uri=store).promoted  # and never the other way round


def test_scorer_scores_with_probability_grade_percentile_and_reasons(store, good, data):
    outcome = registry.register(good, uri=store)
    scorer = Scorer.from_registry(tracking_uri=store, grade_cutoffs=(("A", 0.6), ("B", 0.3), ("C", 0.1)))
    frame = data.X[:50].assign(lead_id=[f"L{i}" for i in range(50)])
    scores = scorer.score_features(frame, cutoff="2025-01-31")
    assert tuple(scores.columns) == OUTPUT_COLUMNS
    np.testing.assert_allclose(scores["probability"], good.model.predict_proba(data.X[:50])[:, 1], atol=1e-12)
    assert scores["grade"].tolist() == grades(scores["probability"], scorer.grade_cutoffs).tolist()
    assert scores["percentile"].max() == 100 and scores["percentile"].min() > 0
    top = scores["probability"].idxmax()
    assert scores.loc[top, "percentile"] == 100
    assert all(isinstance(r, list) for r in scores["reasons_up"])
    assert any("=" in reason for reasons in scores["reasons_up"] for reason in reasons)
    assert (scores["model_version"] == outcome.version).all()
    assert (scores["cutoff"] == pd.Timestamp("2025-01-31", tz="UTC")).all()

    one = scorer.score_features(frame[:1], percentile_of="reference")
    reference, p = np.asarray(scorer.card.reference_quantiles), one.loc[0, "probability"]
    assert not np.isclose(reference, p, rtol=1e-6, atol=0).any()  # between two steps: the share is unambiguous
    assert one.loc[0, "percentile"] == np.round((reference <= p).mean() * 100, 1)  # the share of the reference
    # The model is loaded once per store and version.
    assert Scorer.from_registry(tracking_uri=store).model is scorer.model
    with pytest.raises(ValueError, match="'calls'"):
        scorer.score_features(frame.drop(columns="calls"))
    with pytest.raises(ValueError, match="flat table"):
        scorer.score(pd.DataFrame(), pd.DataFrame(), "2025-01-01")


def test_grade_cutoffs_must_decrease():
    with pytest.raises(ValueError, match="must decrease"):
        grades(np.array([0.5]), (("A", 0.2), ("B", 0.4)))


def test_crm_model_scores_open_leads_from_their_history(store):
    from leadscore.features.catalogue import CATALOGUE_VERSION
    from leadscore.model.training import training_data_from_crm
    from leadscore.simulation.simulator import simulate

    sim = simulate(n_leads=900, n_reps=4, months=12, seed=5)
    labelled_crm = training_data_from_crm(sim.data)
    result = train(labelled_crm, candidates=["logistic", "naive_bayes"], check_leakage=False)
    outcome = registry.register(result, uri=store, catalogue_version=CATALOGUE_VERSION)
    scorer = Scorer.from_registry("champion", store)
    assert scorer.card.catalogue_version == CATALOGUE_VERSION and scorer.card.horizon_days == 90
    scores = scorer.score(sim.data.leads, sim.data.events, sim.data.end)
    assert len(scores) > 0 and (scores["model_version"] == outcome.version).all()
    assert scores["lead_id"].isin(sim.data.leads["lead_id"]).all()
    reasons = [r for rs in scores["reasons_up"].tolist() + scores["reasons_down"].tolist() for r in rs]
    assert reasons and not any(" = " in r for r in reasons)  # catalogue words, not "column = value"
    # The lead attributes chosen are stated in the run (every one with its reason), its parameters and the card.
    client = MlflowClient(store)
    run = client.get_run(outcome.run_id)
    selection = json.loads(mlflow.artifacts.load_text(f"runs:/{outcome.run_id}/choices/attributes.json"))
    assert selection["chosen"] == scorer.card.attributes and set(scorer.attributes) == set(selection["chosen"])
    assert {row["name"] for row in selection["attributes"]} == {
        "segment",
        "country",
        "company_size",
        "industry",
        "campaign",
    }
    assert run.data.params["attributes_used"] == str(len(selection["chosen"]))
