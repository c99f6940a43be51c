"""Why a lead got its score: each feature's contribution to the log-odds, and the top reasons in words.

The contributions are exact decompositions of the model's own log-odds, not a second model's guess:

- logistic regression: ``coef_k * z_k`` for every standardised column ``z_k`` (their training mean is 0, so the
  baseline is the intercept), summed over the columns that come from the same feature (the one-hot columns of
  a category, a number and its missing-value flag);
- naive Bayes: each feature's log-likelihood ratio minus its training average;
- gradient boosting: path attribution ("Saabas"): walking each tree from the root to the example's leaf, every
  split moves the expected value of the tree (weighted by the training examples in each node) and that move is
  credited to the split's feature. It is exact and additive (the moves along a path add up to the leaf value
  minus the tree's average), but unlike SHAP values it credits splits near the leaves more than splits near
  the root when features interact.

A blend's contributions are the weighted average of its members'. In every case
``baseline + contributions.sum(axis=1)`` equals the model's log-odds. With sigmoid calibration
the calibrated log-odds are ``a * raw + b``, so the contributions are scaled by ``a`` and stay exact; with
isotonic calibration they decompose the uncalibrated log-odds (the calibration is monotone, so the direction
of every reason still holds) and :class:`Contributions` says ``exact=False``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from leadscore.model.calibration import TimeCalibratedClassifier
from leadscore.model.candidates import LogOddsBlend
from leadscore.model.naive_bayes import FrequencyNaiveBayes

TOP_REASONS = 3
# How each kind of model's contributions are computed (Contributions.method), here and in the compiled form.
LOGISTIC_METHOD = "logistic coefficients"
NAIVE_BAYES_METHOD = "naive Bayes log-likelihood ratios"
TREES_METHOD = "tree path attribution"
# Contributions smaller than this (in log-odds) are not worth telling a salesperson about.
MIN_REASON_LOG_ODDS = 0.01


@dataclass(kw_only=True)
class Contributions:
    """Per-feature log-odds contributions of a batch of examples.

    ``values`` has one column per feature (the model's raw input columns); ``baseline + values.sum(axis=1)``
    is the model's log-odds (calibrated ones where ``exact``).
    """

    values: pd.DataFrame
    baseline: float
    exact: bool
    method: str

    @property
    def log_odds(self) -> np.ndarray:
        # Row by row in one memory order, so that a lead's log-odds do not depend on the batch it came in (a
        # column-major sum adds in another order and can differ in the last bit).
        return self.baseline + np.ascontiguousarray(self.values.to_numpy()).sum(axis=1)


def _logistic(pipeline: Pipeline, X: pd.DataFrame, cleaned=None) -> tuple[np.ndarray, float, list[str]]:
    cleaned = pipeline.named_steps["clean"].transform(X) if cleaned is None else cleaned
    z = pipeline.named_steps["scale"].transform(pipeline.named_steps["encode"].transform(cleaned))
    model: LogisticRegression = pipeline.named_steps["model"]
    columns = model.coef_[0] * z
    groups = logistic_groups(pipeline.named_steps["encode"])
    features = list(cleaned.columns)
    out = np.zeros((len(X), len(features)))
    position = {f: i for i, f in enumerate(features)}
    np.add.at(out.T, np.array([position[g] for g in groups]), columns.T)
    return out, float(model.intercept_[0]), features


def logistic_groups(encode) -> list[str]:
    """The source feature of every column out of the logistic pipeline's ColumnTransformer."""
    groups: list[str] = [""] * sum(s.stop - s.start for s in encode.output_indices_.values())
    for name, transformer, columns in encode.transformers_:
        span = encode.output_indices_[name]
        if name == "num":
            owners = list(columns)
            imputer = transformer.named_steps["impute"] if hasattr(transformer, "named_steps") else transformer
            indicator = imputer.indicator_
            if indicator is not None:
                owners += [columns[i] for i in indicator.features_]
        elif name == "cat":
            onehot = transformer.named_steps["onehot"]
            owners = []
            for j, column in enumerate(columns):
                infrequent = (onehot.infrequent_categories_ or [None] * len(columns))[j]
                n_out = len(onehot.categories_[j]) - (0 if infrequent is None else len(infrequent) - 1)
                owners += [column] * n_out
        else:
            continue
        if len(owners) != span.stop - span.start:
            raise RuntimeError(f"cannot map the {name!r} columns of the logistic pipeline back to features")
        groups[span] = owners
    return groups


def _naive_bayes(pipeline: Pipeline, X: pd.DataFrame, cleaned=None) -> tuple[np.ndarray, float, list[str]]:
    cleaned = pipeline.named_steps["clean"].transform(X) if cleaned is None else cleaned
    model: FrequencyNaiveBayes = pipeline.named_steps["model"]
    return model.log_odds_contributions(cleaned), model.expected_log_odds_, list(cleaned.columns)


@dataclass
class Forest:
    """Every tree of a fitted HistGradientBoostingClassifier in flat arrays, for vectorised path walking."""

    roots: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    is_leaf: np.ndarray
    is_categorical: np.ndarray
    bitset: np.ndarray  # global row of raw_left_cat_bitsets for categorical splits
    left_bitsets: np.ndarray
    known_bitsets: np.ndarray
    known_row: np.ndarray  # feature -> row of known_bitsets
    expected: np.ndarray  # training-weighted mean leaf value below each node
    depth: int
    baseline: float


_FORESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forest_of(model: HistGradientBoostingClassifier) -> Forest:
    """The trees of a fitted binary HistGradientBoostingClassifier as a :class:`Forest` (built once per model)."""
    cached = _FORESTS.get(model)
    if cached is not None:
        return cached
    if model.n_trees_per_iteration_ != 1:
        raise ValueError("path attribution is implemented for binary gradient boosting only")
    trees = [iteration[0] for iteration in model._predictors]
    sizes = np.array([len(t.nodes) for t in trees])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    bit_sizes = np.array([len(t.raw_left_cat_bitsets) for t in trees])
    bit_offsets = np.concatenate([[0], np.cumsum(bit_sizes)[:-1]])
    nodes = np.concatenate([t.nodes for t in trees])
    tree_of = np.repeat(np.arange(len(trees)), sizes)
    left = nodes["left"].astype(np.int64) + offsets[tree_of]
    right = nodes["right"].astype(np.int64) + offsets[tree_of]
    is_leaf = nodes["is_leaf"].astype(bool)
    # Expected value under each node, bottom-up (children always come after their parent in a tree's array).
    expected = np.where(is_leaf, nodes["value"], 0.0)
    count = nodes["count"].astype(float)
    for i in np.argsort(-nodes["depth"].astype(int), kind="stable"):
        if not is_leaf[i]:
            cl, cr = count[left[i]], count[right[i]]
            expected[i] = (cl * expected[left[i]] + cr * expected[right[i]]) / max(cl + cr, 1.0)
    bitsets = [t.raw_left_cat_bitsets for t in trees if len(t.raw_left_cat_bitsets)]
    known, known_row = model._bin_mapper.make_known_categories_bitsets()
    flat = Forest(
        roots=offsets,
        left=np.where(is_leaf, np.arange(len(nodes)), left),
        right=np.where(is_leaf, np.arange(len(nodes)), right),
        feature=nodes["feature_idx"].astype(np.int64),
        threshold=nodes["num_threshold"],
        missing_left=nodes["missing_go_to_left"].astype(bool),
        is_leaf=is_leaf,
        is_categorical=nodes["is_categorical"].astype(bool),
        bitset=nodes["bitset_idx"].astype(np.int64) + bit_offsets[tree_of],
        left_bitsets=np.concatenate(bitsets) if bitsets else np.zeros((1, 8), dtype=np.uint32),
        known_bitsets=known if len(known) else np.zeros((1, 8), dtype=np.uint32),
        known_row=np.asarray(known_row, dtype=np.int64),
        expected=expected,
        depth=int(nodes["depth"].max()),
        baseline=float(np.ravel(model._baseline_prediction)[0]),
    )
    _FORESTS[model] = flat
    return flat


def internal_order(model: HistGradientBoostingClassifier) -> np.ndarray:
    """The model's input column of each of its internal columns (it puts the categorical ones first)."""
    if model.is_categorical_ is None:
        return np.arange(model.n_features_in_)
    return np.concatenate([np.flatnonzero(model.is_categorical_), np.flatnonzero(~model.is_categorical_)])


def _in_bitset(bitsets: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    values = values.astype(np.int64)
    words = bitsets[rows, values >> 5]
    return ((words >> (values & 31).astype(np.uint32)) & 1).astype(bool)


def tree_path_contributions(model: HistGradientBoostingClassifier, X: np.ndarray) -> tuple[np.ndarray, float]:
    """Path attribution of a fitted binary HistGradientBoostingClassifier on its own input matrix.

    Returns the contributions (n_samples, n_features_in) and the baseline; their row sums plus the baseline
    equal ``model.decision_function(X)``.
    """
    forest = forest_of(model)
    Xi = np.asarray(model._preprocess_X(X, reset=False), dtype=float)
    n, n_trees = Xi.shape[0], len(forest.roots)
    contrib = np.zeros((n, Xi.shape[1]))
    current = np.broadcast_to(forest.roots, (n, n_trees)).copy()
    rows = np.broadcast_to(np.arange(n)[:, None], (n, n_trees))
    for _ in range(forest.depth + 1):
        open_ = ~forest.is_leaf[current]
        if not open_.any():
            break
        r, node = rows[open_], current[open_]
        feature = forest.feature[node]
        x = Xi[r, feature]
        missing = np.isnan(x)
        go_left = np.where(missing, forest.missing_left[node], x <= forest.threshold[node])
        categorical = forest.is_categorical[node] & ~missing
        if categorical.any():
            cx, cn, cf = x[categorical], node[categorical], feature[categorical]
            valid = (cx >= 0) & (cx < 256)
            safe = np.where(valid, cx, 0)
            in_left = valid & _in_bitset(forest.left_bitsets, forest.bitset[cn], safe)
            known = valid & _in_bitset(forest.known_bitsets, forest.known_row[cf], safe)
            go_left[categorical] = np.where(in_left, True, np.where(known, False, forest.missing_left[cn]))
        child = np.where(go_left, forest.left[node], forest.right[node])
        np.add.at(contrib, (r, feature), forest.expected[child] - forest.expected[node])
        current[open_] = child
    baseline = forest.baseline + float(forest.expected[forest.roots].sum())
    return contrib[:, np.argsort(internal_order(model))], baseline


def _gradient_boosting(pipeline: Pipeline, X: pd.DataFrame, cleaned=None) -> tuple[np.ndarray, float, list[str]]:
    cleaned = pipeline.named_steps["clean"].transform(X) if cleaned is None else cleaned
    encode = pipeline.named_steps["encode"]
    z = encode.transform(cleaned)
    contrib, baseline = tree_path_contributions(pipeline.named_steps["model"], z)
    encoded_names = list(encode.get_feature_names_out())
    features = list(cleaned.columns)
    order = [encoded_names.index(f) for f in features]
    return contrib[:, order], baseline, features


def cleaning_key(cleaner) -> tuple:
    """What a fitted TableCleaner does, as a key: two cleaners with equal keys clean every row alike (a blend's
    members have equal cleaners, not the same one), so their cleaning is done once."""
    return tuple(cleaner.kinds_.items()), tuple(getattr(cleaner, "empty_", ())), tuple(cleaner.placeholders)


def calibration_map(model) -> tuple[object, float, float, object | None]:
    """``(pipeline, scale, shift, isotonic)``: the pipeline inside ``model`` and how its calibration maps the
    pipeline's log-odds: ``scale * log_odds + shift`` (sigmoid, or none: 1 and 0), or an isotonic calibrator."""
    if not isinstance(model, TimeCalibratedClassifier):
        return model, 1.0, 0.0, None
    if model.calibrator_ is not None:
        return model.estimator_, 1.0, 0.0, model.calibrator_
    return model.estimator_, model.slope_, model.intercept_, None


def blend_method(methods) -> str:
    """The ``method`` of a blend's contributions from its members' methods."""
    return "average of " + " + ".join(dict.fromkeys(methods))


def _shared_cleaning(members) -> object | None:
    """The members' common first step (TableCleaner), when they all clean the same way; else None."""
    cleaners = []
    for member in members:
        inner = getattr(member, "estimator_", member)
        if not isinstance(inner, Pipeline) or "clean" not in inner.named_steps:
            return None
        cleaners.append(inner.named_steps["clean"])
    first = cleaners[0]
    return first if all(cleaning_key(c) == cleaning_key(first) for c in cleaners[1:]) else None


def explain(model, X: pd.DataFrame, cleaned: pd.DataFrame | None = None) -> Contributions:
    """Per-feature log-odds contributions of ``model`` for the raw rows ``X``.

    ``model`` is a fitted candidate pipeline, a :class:`~leadscore.model.calibration.TimeCalibratedClassifier`
    around one, or a :class:`~leadscore.model.candidates.LogOddsBlend` of those (its contributions are the weighted
    average of its members'). ``cleaned`` is ``X`` already through the pipeline's TableCleaner, when the caller
    has it (a blend cleans once for all its members).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from leadscore.model.candidates import logistic_pipeline
    >>> X = pd.DataFrame({"calls": [0.0, 1, 4, 6, 2, 7], "source": ["web", "web", "ads", "ads", "web", "ads"]})
    >>> model = logistic_pipeline({"calls": "numeric", "source": "categorical"}).fit(X, [0, 0, 1, 1, 0, 1])
    >>> c = explain(model, X)
    >>> bool(np.allclose(c.log_odds, model.decision_function(X)))
    True
    """
    if isinstance(model, LogOddsBlend):
        shared = _shared_cleaning(model.estimators_) if cleaned is None else None
        cleaned = shared.transform(X) if shared is not None else cleaned  # clean once for all members
        parts = [explain(member, X, cleaned) for member in model.estimators_]
        values = sum(w * part.values for w, part in zip(model.weights_, parts, strict=True))
        baseline = float(sum(w * part.baseline for w, part in zip(model.weights_, parts, strict=True)))
        method = blend_method(part.method for part in parts)
        return Contributions(values=values, baseline=baseline, exact=all(part.exact for part in parts), method=method)
    inner, scale, shift, isotonic = calibration_map(model)
    exact = isotonic is None
    if not isinstance(inner, Pipeline):
        raise TypeError(f"cannot explain a {type(inner).__name__}: expected one of the candidate pipelines")
    final = inner.steps[-1][1]
    if isinstance(final, LogisticRegression):
        values, baseline, features, method = *_logistic(inner, X, cleaned), LOGISTIC_METHOD
    elif isinstance(final, FrequencyNaiveBayes):
        values, baseline, features, method = *_naive_bayes(inner, X, cleaned), NAIVE_BAYES_METHOD
    elif isinstance(final, HistGradientBoostingClassifier):
        values, baseline, features, method = *_gradient_boosting(inner, X, cleaned), TREES_METHOD
    else:
        raise TypeError(f"cannot explain a pipeline ending in {type(final).__name__}")
    frame = pd.DataFrame(values * scale, columns=features, index=X.index)
    return Contributions(values=frame, baseline=baseline * scale + shift, exact=exact, method=method)


def table_phrase(name: str, value: object) -> str:
    """How a flat table's value is said: ``column = value`` (or ``column unknown``)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return f"{name} unknown"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{name} = {value}"


def _largest(matrix: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the ``k`` largest values, largest first (equal values: the earlier column)."""
    return np.argsort(-matrix, axis=1, kind="stable")[:, :k]


def _phrased(order: np.ndarray, kept: np.ndarray, values: pd.DataFrame, names: list[str], phrase) -> list[list]:
    """Per row, the phrases of the kept cells ``(row, order[row, i])``, in order (None where not kept).

    Each feature's values are phrased once per distinct value (many leads share "no next step scheduled"), and
    only the cells that are kept are read.
    """
    out = np.full(order.shape, None, dtype=object)
    kept_rows, kept_slots = np.nonzero(kept)
    columns = order[kept_rows, kept_slots]
    for j in np.unique(columns).tolist():
        mine = columns == j
        rows, slots = kept_rows[mine], kept_slots[mine]
        cells = np.asarray(values[names[j]])[rows]  # numbers stay numbers: factorised far faster than objects
        codes, distinct = pd.factorize(cells, use_na_sentinel=False)
        said = np.array([phrase(names[j], value) for value in distinct] + [""], dtype=object)[:-1]
        out[rows, slots] = said[codes]
    return out.tolist()


def by_topic(contributions: Contributions, topic: Callable[[str], str]) -> Contributions:
    """The contributions summed per topic (``topic(feature)``: which fact the feature tells), one column per
    topic in order of first appearance; the log-odds are unchanged.

    Examples
    --------
    >>> c = Contributions(values=pd.DataFrame({"calls_7d": [0.5], "calls_total": [-0.2], "source": [0.1]}),
    ...                   baseline=-1.0, exact=True, method="example")
    >>> grouped = by_topic(c, lambda name: name.split("_")[0])
    >>> grouped.values.round(2).to_dict("records"), bool(np.allclose(grouped.log_odds, c.log_odds))
    ([{'calls': 0.3, 'source': 0.1}], True)
    """
    codes, topics = pd.factorize(pd.Index([topic(name) for name in contributions.values.columns]))
    summed = contributions.values.to_numpy() @ _membership(codes, len(topics))
    frame = pd.DataFrame(summed, columns=list(topics), index=contributions.values.index)
    return Contributions(
        values=frame, baseline=contributions.baseline, exact=contributions.exact, method=contributions.method
    )


def _membership(codes: np.ndarray, n_topics: int) -> np.ndarray:
    """The (features, topics) 0/1 matrix of which feature belongs to which topic."""
    member = np.zeros((len(codes), n_topics))
    member[np.arange(len(codes)), codes] = 1.0
    return member


def _spokesman(matrix: np.ndarray, grouped: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per row and topic, the feature that says the topic: the member pushing hardest in the topic's direction
    (so the phrase agrees with the side it is shown on)."""
    n_topics = grouped.shape[1]
    chosen = np.zeros(grouped.shape, dtype=np.int64)
    signed = matrix * np.where(grouped >= 0, 1.0, -1.0)[:, codes]
    for g in range(n_topics):  # a few dozen topics, each a vectorised argmax over the rows
        members = np.flatnonzero(codes == g)
        chosen[:, g] = members[np.argmax(signed[:, members], axis=1)] if len(members) > 1 else members[0]
    return chosen


def top_reasons(
    contributions: Contributions,
    values: pd.DataFrame,
    phrase: Callable[[str, object], str] = table_phrase,
    top: int = TOP_REASONS,
    topic: Callable[[str], str] | None = None,
) -> tuple[list[list[str]], list[list[str]]]:
    """The ``top`` features pushing each example's score up, and down, in words.

    ``values`` holds the raw feature values to phrase (the model's input rows); ``phrase(name, value)`` turns
    one into words (``catalogue.describe`` for CRM features). With ``topic`` (``phrases.reason_topic`` for CRM
    features), the features that tell the same fact are one reason: their contributions are summed
    (:func:`by_topic`) and said once, by the member pushing hardest in the sum's direction, so a fact is never
    a reason both up and down.

    Examples
    --------
    >>> import pandas as pd
    >>> c = Contributions(values=pd.DataFrame({"calls": [0.8], "source": [-0.3]}), baseline=-2.0, exact=True,
    ...                   method="example")
    >>> top_reasons(c, pd.DataFrame({"calls": [5], "source": ["ads"]}))
    ([['calls = 5']], [['source = ads']])
    """
    matrix = contributions.values.to_numpy()
    names = list(contributions.values.columns)
    if topic is None:
        grouped, speaker = matrix, None
    else:
        codes, _ = pd.factorize(pd.Index([topic(name) for name in names]))
        grouped = matrix @ _membership(codes, int(codes.max()) + 1 if len(codes) else 0)
        speaker = _spokesman(matrix, grouped, codes)
    k = min(top, grouped.shape[1])
    up_order, down_order = _largest(grouped, k), _largest(-grouped, k)
    rows = np.arange(grouped.shape[0])[:, None]
    up_kept = grouped[rows, up_order] > MIN_REASON_LOG_ODDS
    down_kept = grouped[rows, down_order] < -MIN_REASON_LOG_ODDS
    order = np.hstack([up_order, down_order])
    if speaker is not None:  # topics to the features that say them
        order = speaker[rows, order]
    both = _phrased(order, np.hstack([up_kept, down_kept]), values, names, phrase)
    # The kept reasons are a prefix of each side (sorted by size, kept by a threshold on size).
    n_up, n_down = up_kept.sum(axis=1).tolist(), down_kept.sum(axis=1).tolist()
    ups = [row[:u] for row, u in zip(both, n_up, strict=True)]
    downs = [row[k : k + d] for row, d in zip(both, n_down, strict=True)]
    return ups, downs
