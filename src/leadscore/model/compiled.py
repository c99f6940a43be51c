"""A fitted model compiled to plain arrays, for scoring a request in well under a millisecond per lead.

Scoring one lead through the scikit-learn pipeline costs about ten milliseconds, almost none of it in the model:
the column transformer, the encoders and their input checks each build frames and validate them, column by
column, and gradient boosting starts its OpenMP threads for every tree. :func:`compile_model` reads what the
fitted pipeline learned once (medians, scales, coefficients, category codes, the trees) into lookup tables, and
:class:`CompiledModel` then computes the same thing with a few numpy operations per request:

- the table cleaning is the pipeline's own :class:`~leadscore.model.cleaning.TableCleaner` (without building a frame);
- a category's effect (its one-hot columns times their coefficients, or its code for the trees) is looked up
  in a table made by sending every category the encoder knows, a missing value and an unseen one through the
  fitted encoder itself, so unknown and rare categories are treated exactly as the pipeline treats them;
- a number's logistic contribution is ``a * arcsinh(x) + b`` (or a constant when missing), with ``a`` and ``b``
  read off the fitted pipeline the same way;
- each tree is run by scikit-learn's own Cython routine on a copy whose leaves return their node number, and
  every leaf's path attribution (see :mod:`leadscore.model.explain`) is precomputed, so a lead's contributions are a
  sparse sum over the leaves it reaches.

The result is :class:`~leadscore.model.explain.Contributions` equal to :func:`leadscore.model.explain.explain` on the
same rows (tested to 1e-9 on the log-odds), so probabilities and reasons do not change, only their cost. Models it
does not know (the naive Bayes reference and cold-start models) are not compiled: :func:`compile_model` returns
None and the caller explains through the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit, logit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from leadscore.model.calibration import PROB_EPS, TimeCalibratedClassifier
from leadscore.model.candidates import LogOddsBlend
from leadscore.model.cleaning import FEW_ROWS, TableCleaner, n_rows
from leadscore.model.explain import (
    LOGISTIC_METHOD,
    TREES_METHOD,
    Contributions,
    blend_method,
    calibration_map,
    cleaning_key,
    forest_of,
    internal_order,
    logistic_groups,
)
from leadscore.model.kinds import CATEGORICAL
from leadscore.model.threads import scoring_pool, scoring_threads

# From this many rows, the trees of a batch are split over the scoring threads (below, a thread hop costs more).
PARALLEL_ROWS = 200
# A category no encoder has seen, to learn how the fitted encoders treat unseen values.
UNSEEN = "\x00leadscore: a category never seen in training\x00"


@dataclass
class _CategoryTable:
    """What one categorical column becomes: a value per known category, per missing value and per unseen one."""

    known: dict[str, float]
    missing: float
    unseen: float

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """The value of each cleaned category (text, or NaN when missing)."""
        if len(values) <= FEW_ROWS:
            return np.array([self._one(v) for v in values], dtype=float)
        codes, distinct = pd.factorize(values)  # a batch holds few distinct categories: look each up once
        out = np.array([self._one(v) for v in distinct] + [self.missing], dtype=float)
        return out[codes]  # code -1 (missing) takes the last entry

    def _one(self, value: object) -> float:
        return self.known.get(value, self.unseen) if isinstance(value, str) else self.missing


def _probe_frame(encode, cleaned_kinds: dict[str, str], categories: dict[str, list]) -> pd.DataFrame:
    """Rows for the fitted column transformer: for each category column its known values, then a missing value,
    then an unseen one (padded by repeating the last); every number is 0."""
    n = max((len(v) for v in categories.values()), default=0) + 2
    columns = {}
    for column in encode.feature_names_in_:
        if cleaned_kinds[column] == CATEGORICAL:
            values = [*categories[column], np.nan, UNSEEN]
            values += [UNSEEN] * (n - len(values))
            columns[column] = pd.Series(values, dtype=object)
        else:
            columns[column] = np.zeros(n)
    return pd.DataFrame(columns)


def _known_values(categories) -> list[str]:
    return [c for c in categories if isinstance(c, str)]


class _CompiledLogistic:
    """The logistic pipeline's contributions: ``a * g(x) + b`` per number (``c`` when missing), a table per
    category, and the intercept as baseline."""

    def __init__(self, pipeline: Pipeline):
        cleaner: TableCleaner = pipeline.named_steps["clean"]
        encode = pipeline.named_steps["encode"]
        scale = pipeline.named_steps["scale"]
        model: LogisticRegression = pipeline.named_steps["model"]
        self.features = list(cleaner.kinds_)
        kinds = cleaner.kinds_
        groups = np.array(logistic_groups(encode))
        position = {f: i for i, f in enumerate(self.features)}
        owner = np.array([position[g] for g in groups])
        weights = model.coef_[0] / scale.scale_ if scale.with_std else model.coef_[0]
        means = scale.mean_ if scale.with_mean else np.zeros_like(weights)

        def per_feature(frame: pd.DataFrame) -> np.ndarray:
            """Each probe row's contribution of every feature, through the fitted encoder and scaler."""
            columns = (encode.transform(frame) - means) * weights
            out = np.zeros((len(frame), len(self.features)))
            np.add.at(out.T, owner, columns.T)
            return out

        self.compress = None
        for name, transformer, _ in encode.transformers_:
            if name == "num" and hasattr(transformer, "named_steps"):
                self.compress = transformer.named_steps["compress"].func
        categories = {}
        for name, transformer, columns in encode.transformers_:
            if name == "cat":
                onehot = transformer.named_steps["onehot"]
                categories = {c: _known_values(onehot.categories_[j]) for j, c in enumerate(columns)}
        probe = _probe_frame(encode, kinds, categories)
        at_zero = per_feature(probe)
        numbers = [c for c in self.features if kinds[c] != CATEGORICAL]
        self.numeric = np.array([position[c] for c in numbers], dtype=int)
        self.numeric_names = numbers
        ones, missing = probe.copy(), probe.copy()
        for c in numbers:
            ones[c], missing[c] = 1.0, np.nan
        at_one, at_missing = per_feature(ones)[0], per_feature(missing)[0]
        g0, g1 = self._g(np.zeros(1))[0], self._g(np.ones(1))[0]
        slope = (at_one - at_zero[0]) / (g1 - g0)
        self.a = slope[self.numeric]
        self.b = (at_zero[0] - slope * g0)[self.numeric]
        self.c = at_missing[self.numeric]
        self.tables = {}
        for c, known in categories.items():
            j = position[c]
            values = at_zero[:, j]
            self.tables[c] = _CategoryTable(
                dict(zip(known, values[: len(known)], strict=True)), values[len(known)], values[len(known) + 1]
            )
        self.baseline = float(model.intercept_[0])

    def log_odds(self, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
        return self.baseline + self.contributions(columns, n).sum(axis=1)

    def _g(self, x: np.ndarray) -> np.ndarray:
        return self.compress(x) if self.compress is not None else x

    def contributions(self, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
        out = np.empty((n, len(self.features)))
        if len(self.numeric):
            x = np.column_stack([columns[c] for c in self.numeric_names])
            with np.errstate(invalid="ignore"):
                out[:, self.numeric] = np.where(np.isnan(x), self.c, self.a * self._g(x) + self.b)
        for c, table in self.tables.items():
            out[:, self.features.index(c)] = table.lookup(columns[c])
        return out


class _CompiledTrees:
    """Gradient boosting: category codes from tables, leaves from scikit-learn's own tree routine, and each
    leaf's precomputed path attribution."""

    def __init__(self, pipeline: Pipeline):
        cleaner: TableCleaner = pipeline.named_steps["clean"]
        encode = pipeline.named_steps["encode"]
        model: HistGradientBoostingClassifier = pipeline.named_steps["model"]
        if model.n_trees_per_iteration_ != 1:
            raise ValueError("only binary gradient boosting is compiled")
        self.features = list(cleaner.kinds_)
        kinds = cleaner.kinds_
        inputs = list(encode.get_feature_names_out())  # the model's input columns, in order
        categories = {}
        for name, transformer, columns in encode.transformers_:
            if name == "cat":
                categories = {c: _known_values(transformer.categories_[j]) for j, c in enumerate(columns)}
        probe = _probe_frame(encode, kinds, categories)
        # The model recodes its categorical inputs once more: probe through both encoders.
        codes = np.asarray(model._preprocess_X(encode.transform(probe), reset=False), dtype=float)
        internal = internal_order(model)
        self.internal_names = [inputs[i] for i in internal]
        self.tables = {}
        for c, known in categories.items():
            values = codes[:, self.internal_names.index(c)]
            self.tables[c] = _CategoryTable(
                dict(zip(known, values[: len(known)], strict=True)), values[len(known)], values[len(known) + 1]
            )
        self.known_bitsets, self.f_idx_map = model._bin_mapper.make_known_categories_bitsets()
        forest = forest_of(model)
        trees = [iteration[0] for iteration in model._predictors]
        self.leaf_finders = []
        for tree in trees:
            nodes = tree.nodes.copy()
            nodes["value"] = np.arange(len(nodes))
            self.leaf_finders.append(TreePredictor(nodes, tree.binned_left_cat_bitsets, tree.raw_left_cat_bitsets))
        self.offsets = forest.roots
        # Internal column -> position among the cleaned features (what Contributions are indexed by).
        position = {f: i for i, f in enumerate(self.features)}
        to_features = sparse.csr_matrix(
            (np.ones(len(self.internal_names)), ([*range(len(self.internal_names))],
             [position[name] for name in self.internal_names])),
            shape=(len(self.internal_names), len(self.features)),
        )  # fmt: skip
        self.path = (self._leaf_paths(forest, len(self.internal_names)) @ to_features).tocsr()
        self.baseline = forest.baseline + float(forest.expected[forest.roots].sum())
        self.raw_baseline = forest.baseline
        self.node_value = forest.expected  # at a leaf: the leaf's value

    @staticmethod
    def _leaf_paths(forest, n_features: int) -> sparse.csr_matrix:
        """Node -> the path attribution of reaching it: each split on the way credits its feature with the
        change in the tree's expected value (rows of internal nodes are unused)."""
        n_nodes = len(forest.feature)
        rows, cols, vals = [], [], []
        parent_path: dict[int, list[tuple[int, float]]] = {}
        for root in forest.roots:
            parent_path[int(root)] = []
            stack = [int(root)]
            while stack:
                node = stack.pop()
                path = parent_path.pop(node)
                if forest.is_leaf[node]:
                    for feature, delta in path:
                        rows.append(node)
                        cols.append(feature)
                        vals.append(delta)
                    continue
                for child in (int(forest.left[node]), int(forest.right[node])):
                    step = (int(forest.feature[node]), float(forest.expected[child] - forest.expected[node]))
                    parent_path[child] = [*path, step]
                    stack.append(child)
        return sparse.csr_matrix((vals, (rows, cols)), shape=(n_nodes, n_features))

    def _leaves(self, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
        """The global node number of the leaf each row reaches in each tree."""
        X = np.empty((n, len(self.internal_names)))
        for j, c in enumerate(self.internal_names):
            X[:, j] = self.tables[c].lookup(columns[c]) if c in self.tables else columns[c]
        leaves = np.empty((n, len(self.leaf_finders)), dtype=np.int64)

        def run(trees: range) -> None:
            for t in trees:
                leaves[:, t] = self.leaf_finders[t].predict(X, self.known_bitsets, self.f_idx_map, 1)

        pool = scoring_pool() if n >= PARALLEL_ROWS else None
        if pool is None:
            run(range(len(self.leaf_finders)))
        else:
            workers = scoring_threads()
            list(pool.map(run, [range(k, len(self.leaf_finders), workers) for k in range(workers)]))
        return leaves + self.offsets

    def log_odds(self, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
        return self.raw_baseline + self.node_value[self._leaves(columns, n)].sum(axis=1)

    def contributions(self, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
        leaves = self._leaves(columns, n)
        reached = sparse.csr_matrix(
            (np.ones(leaves.size), leaves.ravel(), np.arange(0, leaves.size + 1, leaves.shape[1])),
            shape=(n, self.path.shape[0]),
        )
        return (reached @ self.path).toarray()


@dataclass(kw_only=True)
class _Part:
    """One calibrated member: its compiled pipeline and the linear map of its calibration (or isotonic)."""

    cleaner: TableCleaner
    compiled: _CompiledLogistic | _CompiledTrees
    scale: float
    shift: float
    isotonic: object | None


class CompiledModel:
    """A compiled leadscore model: :meth:`explain` returns what :func:`leadscore.model.explain.explain` returns.

    Built by :func:`compile_model`. Thread-safe (it only reads its tables).
    """

    def __init__(self, parts: list[_Part], weights: list[float], method: str):
        self.parts = parts
        self.weights = weights
        self.method = method
        self.exact = all(p.isotonic is None for p in parts)
        self.features = parts[0].compiled.features

    def explain(self, X: pd.DataFrame | dict[str, np.ndarray]) -> Contributions:
        """Per-feature contributions of the rows ``X`` (a frame, or columns by name as arrays)."""
        n = n_rows(X)
        values = np.zeros((n, len(self.features)))
        baseline = 0.0
        for weight, part, cleaned in self._cleaned(X):
            values += weight * part.scale * part.compiled.contributions(cleaned, n)
            baseline += weight * (part.compiled.baseline * part.scale + part.shift)
        index = X.index if isinstance(X, pd.DataFrame) else None
        frame = pd.DataFrame(values, columns=self.features, index=index)
        return Contributions(values=frame, baseline=baseline, exact=self.exact, method=self.method)

    def log_odds(self, X: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
        """The model's calibrated log-odds (the logit of the probability), without the per-feature split."""
        if not self.exact:
            return logit(self.predict_proba(X))
        n = n_rows(X)
        total = np.zeros(n)
        for weight, part, cleaned in self._cleaned(X):
            total += weight * (part.scale * part.compiled.log_odds(cleaned, n) + part.shift)
        return total

    def predict_proba(self, X: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
        """The positive class's probability, without the per-feature split (for scoring without reasons)."""
        if self.exact:
            return expit(self.log_odds(X))
        [(_, part, cleaned)] = self._cleaned(X)  # isotonic calibration is only compiled for a single model
        return self._isotonic(part.compiled.log_odds(cleaned, n_rows(X)))

    def probability(self, contributions: Contributions) -> np.ndarray:
        """The positive class's probability from :meth:`explain`'s output."""
        return expit(contributions.log_odds) if self.exact else self._isotonic(contributions.log_odds)

    def _isotonic(self, raw_log_odds: np.ndarray) -> np.ndarray:
        return np.clip(self.parts[0].isotonic.predict(raw_log_odds), PROB_EPS, 1 - PROB_EPS)

    def _cleaned(self, X) -> list[tuple[float, _Part, dict[str, np.ndarray]]]:
        """Each part with its weight and ``X`` through its cleaner; parts that clean alike (a blend's members
        have equal cleaners) share one cleaning."""
        done: dict[tuple, dict[str, np.ndarray]] = {}
        out = []
        for weight, part in zip(self.weights, self.parts, strict=True):
            key = cleaning_key(part.cleaner)
            if key not in done:
                done[key] = part.cleaner.converted_columns(X)
            out.append((weight, part, done[key]))
        return out


def _compile_part(model) -> _Part:
    if not isinstance(model, TimeCalibratedClassifier):
        raise TypeError(type(model).__name__)
    inner, scale, shift, isotonic = calibration_map(model)
    if not isinstance(inner, Pipeline) or "clean" not in inner.named_steps:
        raise TypeError(type(inner).__name__)
    final = inner.steps[-1][1]
    if isinstance(final, LogisticRegression):
        compiled = _CompiledLogistic(inner)
    elif isinstance(final, HistGradientBoostingClassifier):
        compiled = _CompiledTrees(inner)
    else:
        raise TypeError(type(final).__name__)
    return _Part(cleaner=inner.named_steps["clean"], compiled=compiled, scale=scale, shift=shift, isotonic=isotonic)


METHOD_NAMES = {_CompiledLogistic: LOGISTIC_METHOD, _CompiledTrees: TREES_METHOD}


def compile_model(model) -> CompiledModel | None:
    """The compiled form of a fitted leadscore model, or None for a model it does not know.

    Knows calibrated logistic regression and gradient boosting pipelines and their blends (with a blend, each
    member's calibration must be a sigmoid or none).
    """
    try:
        if isinstance(model, LogOddsBlend):
            parts = [_compile_part(member) for member in model.estimators_]
            if any(p.isotonic is not None for p in parts):
                return None
            if any(p.compiled.features != parts[0].compiled.features for p in parts):
                return None
            weights = [float(w) for w in model.weights_]
            method = blend_method(METHOD_NAMES[type(p.compiled)] for p in parts)
        else:
            parts, weights = [_compile_part(model)], [1.0]
            method = METHOD_NAMES[type(parts[0].compiled)]
    except TypeError:
        return None
    return CompiledModel(parts, weights, method)
