"""The compiled model computes what the pipeline computes: the same contributions, probabilities and reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logit
from sklearn.base import clone

from leadscore.model.calibration import TimeCalibratedClassifier
from leadscore.model.candidates import LogOddsBlend, gradient_boosting_pipeline, logistic_pipeline, naive_bayes_pipeline
from leadscore.model.cleaning import EMPTY_CATEGORY, TableCleaner
from leadscore.model.compiled import compile_model
from leadscore.model.explain import MIN_REASON_LOG_ODDS, Contributions, explain, table_phrase, top_reasons
from leadscore.model.flat_table import load_flat_table
from leadscore.model.threads import limited_threads
from leadscore.model.training import train
from leadscore.registry import REFERENCE_QUANTILES, ModelCard, model_card
from leadscore.serving.scorer import Scorer

N_ROWS, N_TRAIN = 1500, 1200
# Rare categories: fewer rows than the encoders' min_frequency (20), so they are grouped as "infrequent".
RARE = {"fax": 12, "radio": 15, "tv": 5, "print": 19}
# Placeholders (missing), untrimmed text and a differently spelled category among the sources.
ODD_SOURCES = {"unknown": 20, "n/a": 20, "": 30, " web ": 10, "Web": 3}
# Columns without a single value in training: a kind is given for them (load_flat_table would drop them).
EMPTY_KINDS = {"score": "numeric", "segment": "categorical"}


@pytest.fixture(autouse=True, scope="module")
def one_thread_when_busy():
    """Gradient boosting's OpenMP threads crawl on a busy shared machine (see leadscore.model.threads)."""
    with limited_threads():
        yield


def raw_table(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    """A flat lead export as text: numbers, yes/no, dates, categories with rare values, placeholders, blanks."""
    rng = np.random.default_rng(seed)
    calls = rng.poisson(2.0, n)
    budget = np.round(rng.gamma(2.0, 500.0, n), 2)
    newsletter = rng.random(n) < 0.3
    days = rng.integers(0, 400, n)
    common = rng.choice(["web", "ads", "event"], n, p=[0.5, 0.3, 0.2])
    source = common.astype(object)
    order, start = rng.permutation(n), 0
    for value, count in {**RARE, **ODD_SOURCES}.items():
        source[order[start : start + count]] = value
        start += count
    region = rng.choice(["north", "south", "east", "west", "islands", "abroad"], n, p=[0.3, 0.3, 0.2, 0.17, 0.02, 0.01])
    score = -1.5 + 0.5 * calls + 0.0004 * budget + 0.6 * newsletter - 0.8 * (common == "ads") - days / 400
    y = rng.random(n) < 1 / (1 + np.exp(-score))
    calls_text = pd.Series([f" {c} " if i % 7 == 0 else str(c) for i, c in enumerate(calls)], dtype=object)
    calls_text[rng.random(n) < 0.05] = ""
    calls_text[rng.random(n) < 0.03] = "N/A"
    dates = pd.Series((pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"))
    dates[rng.random(n) < 0.04] = ""
    news = pd.Series(np.where(newsletter, "yes", "no"), dtype=object)
    news[rng.random(n) < 0.05] = "unknown"
    news[(rng.random(n) < 0.05) & newsletter] = " yes "
    return pd.DataFrame(
        {
            "lead": [f"L{i:05d}" for i in range(n)],
            "calls": calls_text,
            "budget": pd.Series(budget.astype(str), dtype=object),  # never missing in training
            "newsletter": news,
            "first_contact": dates.astype(object),
            "source": source,
            "region": region.astype(object),
            "score": pd.Series(["", "unknown", "n/a"] * (n // 3), dtype=object),
            "segment": pd.Series([""] * n, dtype=object),
            "converted": np.where(y, "yes", "no"),
        }
    )


# Raw values to score, per column: seen, rare, unseen, placeholders, untrimmed, unparseable and missing ones.
POOLS: dict[str, list] = {
    "calls": ["0", "3", " 12 ", "1e1", "2.5", "-1", "", "unknown", "N/A", "x", None, "(missing)"],
    "budget": ["250.5", " 1000 ", "0", "1e5", "-3", "", "unknown", "n/a", None, "(missing)"],
    "newsletter": ["yes", "no", " yes ", "YES", "y", "false", "maybe", "", "unknown", None, "(missing)"],
    "first_contact": ["2023-05-05", "2023-07-01", "2022-01-01T10:00:00Z", "2023/06/01", "2024-02-30", "", None, "?"],
    "source": ["web", "ads", "event", "fax", "radio", " tv ", "print", "Web", "WEB", "carrier pigeon", "(missing)",
               "", "unknown", "n/a", None],
    "region": ["north", "islands", "abroad", " east", "atlantis", "(missing)", "", None],
    "score": ["7", "0", "", "unknown", None],
    "segment": ["enterprise", EMPTY_CATEGORY, "(missing)", "", None],
}  # fmt: skip


def awkward_rows() -> pd.DataFrame:
    """Rows that exercise every awkward value at least once (each pool cycled over the rows)."""
    n = max(len(pool) for pool in POOLS.values())
    return pd.DataFrame({c: [pool[i % len(pool)] for i in range(n)] for c, pool in POOLS.items()}, dtype=object)


def text_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The rows as raw text arrays by column name."""
    return {c: frame[c].to_numpy(dtype=object) for c in frame.columns}


def typed_columns(frame: pd.DataFrame, kinds: dict[str, str]) -> dict[str, np.ndarray]:
    """The rows as the API types them: numeric features as floats (NaN when missing), the rest as text or None."""
    out = {}
    for c in frame.columns:
        if kinds.get(c) == "numeric":
            out[c] = pd.to_numeric(frame[c].astype("string").str.strip(), errors="coerce").to_numpy(
                float, na_value=np.nan
            )
        else:
            out[c] = np.array([None if pd.isna(v) else str(v) for v in frame[c]], dtype=object)
    return out


def as_frame(X) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


@pytest.fixture(scope="module")
def table():
    """The flat table as load_flat_table reads it, plus the two columns that were never filled in."""
    data = load_flat_table("leads.csv", "converted", row_order_is_time=True, frame=raw_table())
    assert data.kinds == {
        "calls": "numeric",
        "budget": "numeric",
        "newsletter": "boolean",
        "first_contact": "date",
        "source": "categorical",
        "region": "categorical",
    }
    raw = raw_table()
    data.kinds = {**data.kinds, **EMPTY_KINDS}
    data.X = raw[list(data.kinds)]
    return data


@pytest.fixture(scope="module")
def models(table):
    """Logistic and gradient boosting under every calibration, and blends of the two, fitted on the first rows."""
    X, y, times = table.X[:N_TRAIN], table.y[:N_TRAIN], table.times[:N_TRAIN]
    builders = {
        "logistic": lambda: logistic_pipeline(table.kinds),
        "gradient_boosting": lambda: gradient_boosting_pipeline(table.kinds, max_iter=20),
    }
    fitted = {}
    for name, build in builders.items():
        for method in ("sigmoid", "none", "isotonic"):
            fitted[f"{name}-{method}"] = TimeCalibratedClassifier(build(), method=method).fit(X, y, times=times)
    for method, weights in (("sigmoid", None), ("none", None), ("sigmoid", [0.3, 0.7])):
        members = [fitted[f"logistic-{method}"], fitted[f"gradient_boosting-{method}"]]
        name = f"blend-{method}" + ("-weighted" if weights else "")
        fitted[name] = LogOddsBlend([clone(m) for m in members], weights=weights).set_fitted(members)
    return fitted


@pytest.fixture(scope="module")
def compiled(models):
    return {name: compile_model(model) for name, model in models.items()}


@pytest.fixture(scope="module")
def rows(table):
    """The held-out rows (more than FEW_ROWS: converted once per distinct value) and the awkward ones."""
    return pd.concat([table.X[N_TRAIN:], awkward_rows()], ignore_index=True)


MODEL_NAMES = [
    *(f"{name}-{method}" for name in ("logistic", "gradient_boosting") for method in ("sigmoid", "none", "isotonic")),
    "blend-sigmoid",
    "blend-none",
    "blend-sigmoid-weighted",
]


def assert_same_contributions(fast: Contributions, slow: Contributions):
    assert list(fast.values.columns) == list(slow.values.columns)
    assert fast.values.shape == slow.values.shape
    np.testing.assert_allclose(fast.values.to_numpy(), slow.values.to_numpy(), rtol=0, atol=1e-9)
    assert fast.baseline == pytest.approx(slow.baseline, abs=1e-9)
    assert fast.exact == slow.exact
    assert fast.method == slow.method


def assert_compiled_equals_the_model(model, fast, X):
    """explain, probability and log_odds of the compiled model against the model's own, on the rows X."""
    frame = as_frame(X)
    contributions = fast.explain(X)
    assert_same_contributions(contributions, explain(model, frame))
    p = model.predict_proba(frame)[:, 1]
    log_odds = fast.log_odds(X)
    np.testing.assert_allclose(log_odds, logit(p), rtol=0, atol=1e-9)
    np.testing.assert_allclose(log_odds, model.decision_function(frame), rtol=0, atol=1e-9)
    if contributions.exact:
        np.testing.assert_allclose(fast.probability(contributions), p, rtol=0, atol=1e-12)
    else:  # isotonic: the contributions decompose the raw log-odds, which the calibrator maps to probabilities
        np.testing.assert_allclose(contributions.log_odds, model.raw_log_odds(frame), rtol=0, atol=1e-9)
        np.testing.assert_allclose(fast.probability(contributions), p, rtol=0, atol=1e-9)


def test_the_table_holds_every_awkward_case(models, table):
    """What the other tests rely on: rare categories grouped, a number never missing, columns never filled in."""
    logistic = models["logistic-sigmoid"].estimator_
    cleaner: TableCleaner = logistic.named_steps["clean"]
    assert cleaner.empty_ == list(EMPTY_KINDS)
    encode = logistic.named_steps["encode"]
    onehot = encode.named_transformers_["cat"].named_steps["onehot"]
    (categorical,) = [columns for name, _, columns in encode.transformers_ if name == "cat"]
    infrequent = dict(zip(categorical, onehot.infrequent_categories_, strict=True))
    assert set(RARE) <= set(infrequent["source"])
    impute = encode.named_transformers_["num"].named_steps["impute"]
    with_indicator = {impute.feature_names_in_[i] for i in impute.indicator_.features_}
    assert "calls" in with_indicator and "budget" not in with_indicator and "first_contact" in with_indicator
    boosting = models["gradient_boosting-sigmoid"].estimator_.named_steps["model"]
    assert any(tree[0].nodes["is_categorical"].any() for tree in boosting._predictors)  # categorical splits


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("form", ["frame", "text columns", "typed columns"])
def test_compiled_model_equals_the_pipeline(models, compiled, rows, table, name, form):
    fast = compiled[name]
    assert fast is not None
    X = {"frame": rows, "text columns": text_columns(rows), "typed columns": typed_columns(rows, table.kinds)}[form]
    assert_compiled_equals_the_model(models[name], fast, X)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_few_rows_are_compiled_alike(models, compiled, name):
    """Up to FEW_ROWS rows take the cleaner's value-by-value path; each awkward row on its own."""
    rows = awkward_rows()
    assert_compiled_equals_the_model(models[name], compiled[name], rows.iloc[:5])
    for i in range(len(rows)):
        assert_compiled_equals_the_model(models[name], compiled[name], text_columns(rows.iloc[[i]]))


raw_rows = st.lists(
    st.fixed_dictionaries({c: st.sampled_from(pool) for c, pool in POOLS.items()}), min_size=1, max_size=14
).map(lambda records: pd.DataFrame(records, columns=list(POOLS), dtype=object))
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(raw_rows, st.sampled_from(["frame", "text columns", "typed columns"]))
def test_compiled_blend_equals_the_pipeline_on_any_raw_rows(models, compiled, table, frame, form):
    X = {"frame": frame, "text columns": text_columns(frame), "typed columns": typed_columns(frame, table.kinds)}[form]
    for name in ("blend-sigmoid", "gradient_boosting-isotonic"):
        assert_compiled_equals_the_model(models[name], compiled[name], X)


def test_models_it_does_not_know_are_not_compiled(models, table):
    X, y, times = table.X[:N_TRAIN], table.y[:N_TRAIN], table.times[:N_TRAIN]
    naive_bayes = TimeCalibratedClassifier(naive_bayes_pipeline(table.kinds)).fit(X, y, times=times)
    assert compile_model(naive_bayes) is None
    assert compile_model(models["logistic-sigmoid"].estimator_) is None  # an uncalibrated bare pipeline
    isotonic = [models["logistic-isotonic"], models["gradient_boosting-isotonic"]]
    assert compile_model(LogOddsBlend([clone(m) for m in isotonic]).set_fitted(isotonic)) is None


@pytest.mark.parametrize("builder", [logistic_pipeline, gradient_boosting_pipeline])
@pytest.mark.parametrize("columns", [["calls", "budget", "first_contact"], ["source", "region", "segment"]])
def test_models_of_only_numbers_or_only_categories_compile(table, builder, columns):
    kinds = {c: table.kinds[c] for c in columns}
    X = table.X[columns]
    model = TimeCalibratedClassifier(builder(kinds)).fit(X[:N_TRAIN], table.y[:N_TRAIN], times=table.times[:N_TRAIN])
    rows = pd.concat([X[N_TRAIN:], awkward_rows()[columns]], ignore_index=True)
    assert_compiled_equals_the_model(model, compile_model(model), rows)


# Scoring


def card_for(model, table, chosen: str) -> ModelCard:
    reference = model.predict_proba(table.X[N_TRAIN:])[:, 1]
    return ModelCard(
        source="table",
        kinds=dict(table.kinds),
        chosen=chosen,
        calibration=getattr(model, "method", "sigmoid"),
        cold_start=False,
        horizon_days=0.0,
        time_kind=table.time_kind,
        trained_until=None,
        reference_quantiles=[float(q) for q in np.quantile(reference, np.linspace(0, 1, REFERENCE_QUANTILES))],
        explanation=explain(model, table.X.head(1)).method,
        version="7",
    )


def scoring_rows(rows: pd.DataFrame, table) -> tuple[dict[str, np.ndarray], list[str], pd.DataFrame]:
    """The rows as the API passes them to score_columns, their ids, and the same typed rows as a frame."""
    columns = typed_columns(rows, table.kinds)
    ids = [f"L{i}" for i in range(len(rows))]
    return columns, ids, pd.DataFrame({"lead_id": ids, **columns})


def assert_same_scores(columns: dict[str, object], frame: pd.DataFrame, *, reasons: bool = True):
    np.testing.assert_allclose(np.asarray(columns["probability"]), frame["probability"].to_numpy(), rtol=0, atol=1e-12)
    assert list(columns["grade"]) == frame["grade"].tolist()
    assert list(columns["percentile"]) == frame["percentile"].tolist()
    assert list(columns["lead_id"]) == frame["lead_id"].tolist()
    if reasons:
        assert list(columns["reasons_up"]) == frame["reasons_up"].tolist()
        assert list(columns["reasons_down"]) == frame["reasons_down"].tolist()


@pytest.mark.parametrize("name", ["logistic-sigmoid", "gradient_boosting-isotonic", "blend-sigmoid"])
@pytest.mark.parametrize("percentile_of", ["batch", "reference"])
def test_score_columns_equals_score_features(models, rows, table, name, percentile_of):
    model = models[name]
    scorer = Scorer(model, card_for(model, table, name))
    assert scorer._compiled is not None
    columns, ids, frame = scoring_rows(rows, table)
    by_frame = scorer.score_features(frame, percentile_of=percentile_of)
    assert_same_scores(scorer.score_columns(columns, ids, percentile_of=percentile_of), by_frame)
    np.testing.assert_allclose(by_frame["probability"], model.predict_proba(frame)[:, 1], rtol=0, atol=1e-9)
    assert any(by_frame["reasons_up"]) and any(by_frame["reasons_down"])
    # The reasons the pipeline's own contributions give.
    up, down = top_reasons(explain(model, frame[scorer.features]), frame[scorer.features], table_phrase)
    assert by_frame["reasons_up"].tolist() == up and by_frame["reasons_down"].tolist() == down


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_scoring_without_reasons_gives_the_same_probabilities(models, rows, table, name):
    scorer = Scorer(models[name], card_for(models[name], table, name))
    columns, ids, frame = scoring_rows(rows, table)
    full = scorer.score_features(frame)
    quick = scorer.score_columns(columns, ids, reasons=False)
    assert_same_scores(quick, full, reasons=False)
    assert list(quick["reasons_up"]) == [[]] * len(ids) and list(quick["reasons_down"]) == [[]] * len(ids)
    quick_frame = scorer.score_features(frame, reasons=False)
    assert_same_scores(quick, quick_frame)  # the same empty reasons too


@pytest.mark.parametrize(
    "name",
    [
        "logistic-sigmoid",
        "blend-sigmoid",
        "logistic-isotonic",
        "gradient_boosting-isotonic",
        "gradient_boosting-sigmoid",
    ],
)
def test_scoring_without_reasons_gives_the_same_reference_percentiles(models, rows, table, name):
    scorer = Scorer(models[name], card_for(models[name], table, name))
    columns, ids, _ = scoring_rows(rows, table)
    quick = scorer.score_columns(columns, ids, percentile_of="reference", reasons=False)
    full = scorer.score_columns(columns, ids, percentile_of="reference")
    assert quick["percentile"].tolist() == full["percentile"].tolist()


@pytest.fixture(scope="module")
def uncompiled(table):
    """A naive Bayes model and a cold-start one (too few conversions), each with its card from training."""
    naive_bayes = train(table, candidates=["naive_bayes"], check_leakage=False)
    few = table.subset(np.flatnonzero((table.y == 0) | (np.cumsum(table.y) <= 30)))
    cold = train(few, check_leakage=False)
    assert cold.cold_start
    return {"naive_bayes": naive_bayes, "cold_start": cold}


@pytest.mark.parametrize("name", ["naive_bayes", "cold_start"])
def test_models_that_are_not_compiled_score_through_the_pipeline(uncompiled, rows, table, name):
    result = uncompiled[name]
    scorer = Scorer(result.model, model_card(result))
    assert scorer._compiled is None
    columns, ids, frame = scoring_rows(rows, table)
    by_frame = scorer.score_features(frame)
    assert_same_scores(scorer.score_columns(columns, ids), by_frame)
    assert_same_scores(scorer.score_columns(columns, ids, reasons=False), by_frame, reasons=False)
    np.testing.assert_allclose(by_frame["probability"], result.model.predict_proba(frame)[:, 1], rtol=0, atol=1e-12)
    assert any(by_frame["reasons_up"]) or any(by_frame["reasons_down"])
    assert by_frame["provisional"].tolist() == [name == "cold_start"] * len(rows)


# Batch independence


@SETTINGS
@given(raw_rows, st.sampled_from(["logistic-isotonic", "gradient_boosting-sigmoid", "blend-sigmoid-weighted"]))
def test_scoring_rows_one_at_a_time_equals_scoring_them_together(models, compiled, table, frame, name):
    fast = compiled[name]
    X = typed_columns(frame, table.kinds)
    together = fast.explain(X)
    up, down = top_reasons(together, X)
    p = fast.probability(together)
    for i in range(len(frame)):
        one = {c: v[i : i + 1] for c, v in X.items()}
        alone = fast.explain(one)
        np.testing.assert_allclose(alone.values.to_numpy(), together.values.to_numpy()[i : i + 1], rtol=0, atol=1e-12)
        assert fast.probability(alone) == pytest.approx(p[i : i + 1], abs=1e-12)
        assert top_reasons(alone, one) == ([up[i]], [down[i]])


@pytest.mark.parametrize("name", ["gradient_boosting-none", "blend-sigmoid"])
def test_a_large_batch_equals_its_rows_one_at_a_time(models, compiled, rows, table, name):
    """A few hundred rows take the batch paths (trees split over the scoring threads, categories looked up once
    per distinct value); one row takes the single-row ones."""
    assert len(rows) > 300
    fast = compiled[name]
    X = typed_columns(rows, table.kinds)
    together = fast.explain(X)
    up, down = top_reasons(together, X)
    for i in range(len(rows)):
        one = {c: v[i : i + 1] for c, v in X.items()}
        alone = fast.explain(one)
        np.testing.assert_allclose(alone.values.to_numpy()[0], together.values.to_numpy()[i], rtol=0, atol=1e-12)
        assert top_reasons(alone, one) == ([up[i]], [down[i]])

    scorer = Scorer(models[name], card_for(models[name], table, name))
    columns, ids, _ = scoring_rows(rows, table)
    batch = scorer.score_columns(columns, ids)
    for i in range(len(rows)):
        single = scorer.score_columns({c: v[i : i + 1] for c, v in columns.items()}, ids[i : i + 1])
        assert single["probability"][0] == pytest.approx(batch["probability"][i], abs=1e-12)
        assert single["grade"][0] == batch["grade"][i]
        assert single["reasons_up"][0] == batch["reasons_up"][i]
        assert single["reasons_down"][0] == batch["reasons_down"][i]


@pytest.mark.parametrize("name", ["logistic-sigmoid", "blend-sigmoid", "gradient_boosting-sigmoid"])
def test_reference_percentiles_do_not_depend_on_the_batch(models, rows, table, name):
    scorer = Scorer(models[name], card_for(models[name], table, name))
    columns, ids, _ = scoring_rows(rows, table)
    batch = scorer.score_columns(columns, ids, percentile_of="reference")["percentile"].tolist()
    alone = []
    for i in range(len(ids)):
        one = {c: v[i : i + 1] for c, v in columns.items()}
        alone.append(scorer.score_columns(one, ids[i : i + 1], percentile_of="reference")["percentile"][0])
    assert alone == batch


def test_text_columns_holding_python_numbers_are_cleaned_alike_in_any_batch():
    cleaner = TableCleaner(kinds={"zip": "categorical"}).fit(pd.DataFrame({"zip": ["1", "1.0", "2"] * 10}))
    values = np.array([1, 1.0, True] + [2] * 8, dtype=object)
    together = cleaner.converted_columns({"zip": values})["zip"]
    alone = [cleaner.converted_columns({"zip": values[i : i + 1]})["zip"][0] for i in range(len(values))]
    assert together.tolist() == alone


# Reasons


def contributions_of(values: dict[str, list[float]]) -> Contributions:
    return Contributions(values=pd.DataFrame(values), baseline=-1.0, exact=True, method="by hand")


def test_reasons_are_ordered_by_size_and_small_ones_left_out():
    c = contributions_of(
        {"a": [0.2, -0.3], "b": [0.9, MIN_REASON_LOG_ODDS], "c": [-0.5, -MIN_REASON_LOG_ODDS], "d": [0.011, -0.02],
         "e": [-0.05, 0.0], "f": [0.009, 0.4]}
    )  # fmt: skip
    values = pd.DataFrame({name: [f"{name}0", f"{name}1"] for name in "abcdef"})
    up, down = top_reasons(c, values, top=10)
    assert up == [["b = b0", "a = a0", "d = d0"], ["f = f1"]]  # 0.009 and exactly MIN_REASON_LOG_ODDS: too small
    assert down == [["c = c0", "e = e0"], ["a = a1", "d = d1"]]


def test_top_limits_the_reasons_each_way():
    c = contributions_of({"a": [0.5], "b": [0.4], "c": [0.3], "d": [-0.1], "e": [-0.2], "f": [-0.3]})
    values = pd.DataFrame({name: [1.0] for name in "abcdef"})
    assert top_reasons(c, values, top=2) == ([["a = 1", "b = 1"]], [["f = 1", "e = 1"]])
    assert top_reasons(c, values, top=1) == ([["a = 1"]], [["f = 1"]])
    assert top_reasons(c, values) == ([["a = 1", "b = 1", "c = 1"]], [["f = 1", "e = 1", "d = 1"]])


@given(
    st.lists(st.lists(st.floats(-2, 2, allow_nan=False), min_size=6, max_size=6, unique=True), min_size=1, max_size=5),
    st.integers(1, 8),
)
@settings(max_examples=100, deadline=None)
def test_reasons_are_the_largest_contributions_in_order(matrix, top):
    names = [f"f{j}" for j in range(6)]
    c = contributions_of({name: [row[j] for row in matrix] for j, name in enumerate(names)})
    values = pd.DataFrame({name: list(range(len(matrix))) for name in names})
    up, down = top_reasons(c, values, top=top)
    for i, row in enumerate(matrix):
        ranked = sorted(range(6), key=lambda j: -row[j])
        assert up[i] == [f"f{j} = {i}" for j in ranked[:top] if row[j] > MIN_REASON_LOG_ODDS]
        assert down[i] == [f"f{j} = {i}" for j in ranked[::-1][:top] if row[j] < -MIN_REASON_LOG_ODDS]


@pytest.mark.parametrize(
    ("row", "top", "expected"),
    [
        ([0.5, 0.5, -0.5, -0.5], 4, ([["a = a", "b = b"]], [["c = c", "d = d"]])),
        ([0.5, 0.2, 0.2, 0.2, 0.2], 3, ([["a = a", "b = b", "c = c"]], [[]])),
        ([0.5, 0.5, 0.5, -0.5, -0.5, -0.5], 2, ([["a = a", "b = b"]], [["d = d", "e = e"]])),
        ([0.5, 0.5, -0.5, -0.5], 1, ([["a = a"]], [["c = c"]])),
        ([0.2, 0.2, 0.5, 0.5], 1, ([["c = c"]], [[]])),
        ([-0.2, -0.2, -0.5, -0.5], 1, ([[]], [["c = c"]])),
    ],
)
def test_equal_contributions_go_to_the_earlier_column(row, top, expected):
    names = "abcdef"[: len(row)]
    c = contributions_of({name: [value] for name, value in zip(names, row, strict=True)})
    assert top_reasons(c, pd.DataFrame({name: [name] for name in names}), top=top) == expected
