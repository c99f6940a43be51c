"""The candidate models, each a scikit-learn pipeline that takes the raw feature columns.

- ``logistic``: regularised logistic regression: medians for missing numbers (with a missing-value flag),
  numbers compressed with arcsinh (log-like for long tails), one-hot categories (rare ones grouped), every
  column standardised, L2 penalty. Its log-odds are additive in
  the features, so its explanations are exact.
- ``gradient_boosting``: histogram gradient boosting with native categorical splits and missing-value handling;
  a fixed, modest number of trees (no early stopping on a random split of time-ordered data, whose weekly
  snapshots of the same lead would make it stop far too late: 100 trees did better than 200 on the simulator).
- ``naive_bayes``: the frequency-table naive Bayes that some CRMs ship, as a reference;
- ``blend``: the average of the calibrated log-odds of ``logistic`` and ``gradient_boosting``
  (:class:`LogOddsBlend`). The two make different mistakes (smooth trends against thresholds and interactions),
  so their average usually ranks better than either; it stays exactly explainable, since an average of additive
  decompositions is one.

Every pipeline starts with :class:`~leadscore.model.cleaning.TableCleaner`, so the logged model takes raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from leadscore.model.cleaning import TableCleaner
from leadscore.model.kinds import CATEGORICAL
from leadscore.model.naive_bayes import FrequencyNaiveBayes

CANDIDATES: tuple[str, ...] = ("logistic", "gradient_boosting", "naive_bayes", "blend")
BLEND_MEMBERS: tuple[str, ...] = ("logistic", "gradient_boosting")
MISSING_CATEGORY = "(missing)"


def _split_kinds(kinds: Mapping[str, str]) -> tuple[list[str], list[str]]:
    categorical = [c for c, k in kinds.items() if k == CATEGORICAL]
    numeric = [c for c, k in kinds.items() if k != CATEGORICAL]
    return numeric, categorical


def logistic_pipeline(kinds: Mapping[str, str], C: float = 0.1, compress: bool = True) -> Pipeline:
    """Regularised logistic regression on imputed, one-hot encoded, standardised columns.

    ``compress=False`` leaves the numbers as they are (no arcsinh), as in :func:`plain_logistic_pipeline`.

    Examples
    --------
    >>> logistic_pipeline({"calls": "numeric", "source": "categorical"}).steps[-1][0]
    'model'
    """
    numeric, categorical = _split_kinds(kinds)
    parts = []
    if numeric:
        impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        # arcsinh is about log(2x) for large values and x near 0: it tames the long tails of counts, days and
        # amounts, so that one extreme lead does not dominate a linear model (0.003-0.005 AUC on the simulator).
        arcsinh = FunctionTransformer(np.arcsinh if compress else None, feature_names_out="one-to-one")
        parts.append(("num", Pipeline([("impute", impute), ("compress", arcsinh)]), numeric))
    if categorical:
        parts.append(
            (
                "cat",
                Pipeline(
                    [
                        ("fill", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="ignore",
                                min_frequency=20,
                                max_categories=30,
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                categorical,
            )
        )
    return Pipeline(
        [
            ("clean", TableCleaner(kinds=dict(kinds))),
            ("encode", ColumnTransformer(parts, sparse_threshold=0.0)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=C, max_iter=2000)),
        ]
    )


def plain_logistic_pipeline(kinds: Mapping[str, str]) -> Pipeline:
    """The yardstick, not a candidate: scikit-learn's default logistic regression on the same columns.

    The same cleaning, imputation, one-hot encoding and scaling as :func:`logistic_pipeline`, but the numbers
    not compressed and the default penalty (C=1): what a user fitting "a plain logistic regression" would
    write. Training reports the chosen model's calibration on the later period against this one's
    (:mod:`leadscore.model.later_period`).

    Examples
    --------
    >>> plain_logistic_pipeline({"calls": "numeric"}).named_steps["model"].C
    1.0
    """
    return logistic_pipeline(kinds, C=1.0, compress=False)


def gradient_boosting_pipeline(
    kinds: Mapping[str, str],
    *,
    max_iter: int = 100,
    learning_rate: float = 0.05,
    max_leaf_nodes: int = 15,
    min_samples_leaf: int = 100,
    l2_regularization: float = 1.0,
    random_state: int = 0,
) -> Pipeline:
    """Histogram gradient boosting with native categorical support and a fixed number of trees.

    Examples
    --------
    >>> gradient_boosting_pipeline({"calls": "numeric", "source": "categorical"}).steps[-1][0]
    'model'
    """
    numeric, categorical = _split_kinds(kinds)
    parts = []
    if categorical:
        parts.append(
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    min_frequency=20,
                    max_categories=100,
                ),
                categorical,
            )
        )
    if numeric:
        parts.append(("num", "passthrough", numeric))
    mask = [True] * len(categorical) + [False] * len(numeric)
    return Pipeline(
        [
            ("clean", TableCleaner(kinds=dict(kinds))),
            ("encode", ColumnTransformer(parts, sparse_threshold=0.0, verbose_feature_names_out=False)),
            (
                "model",
                HistGradientBoostingClassifier(
                    max_iter=max_iter,
                    learning_rate=learning_rate,
                    max_leaf_nodes=max_leaf_nodes,
                    min_samples_leaf=min_samples_leaf,
                    l2_regularization=l2_regularization,
                    categorical_features=mask if categorical else None,
                    early_stopping=False,
                    random_state=random_state,
                ),
            ),
        ]
    )


def naive_bayes_pipeline(
    kinds: Mapping[str, str], *, n_bins: int = 10, alpha: float = 1.0, evidence_weight: float = 1.0
) -> Pipeline:
    """Frequency-table naive Bayes on binned numbers and categories.

    Examples
    --------
    >>> naive_bayes_pipeline({"calls": "numeric"}).steps[-1][1].n_bins
    10
    """
    _, categorical = _split_kinds(kinds)
    return Pipeline(
        [
            ("clean", TableCleaner(kinds=dict(kinds))),
            (
                "model",
                FrequencyNaiveBayes(
                    n_bins=n_bins, alpha=alpha, categorical_features=categorical, evidence_weight=evidence_weight
                ),
            ),
        ]
    )


def cold_start_pipeline(kinds: Mapping[str, str]) -> Pipeline:
    """The model for too few examples: a heavily smoothed, tempered naive Bayes around the smoothed base rate.

    Four bins per number, a pseudo-count of 5 per bin and half-weight evidence: with a few dozen conversions it
    stays close to the base rate and moves only on strong, repeated patterns.
    """
    return naive_bayes_pipeline(kinds, n_bins=4, alpha=5.0, evidence_weight=0.5)


class LogOddsBlend(ClassifierMixin, BaseEstimator):
    """A weighted average of binary classifiers' log-odds (their ``decision_function``).

    Parameters
    ----------
    estimators : list of estimator
        Binary classifiers whose ``decision_function`` is a log-odds (the calibrated candidates).
    weights : list of float, default=None
        One per estimator, summing to 1; equal weights by default.

    Attributes
    ----------
    estimators_ : list of estimator
        The fitted members.
    weights_ : ndarray
        The weights used.
    classes_ : ndarray
        The two class labels.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = [0, 0, 1, 1]
    >>> blend = LogOddsBlend([LogisticRegression(), LogisticRegression(C=0.1)]).fit(X, y)
    >>> blend.predict(X).tolist()
    [0, 0, 1, 1]
    """

    def __init__(self, estimators=None, weights=None):
        self.estimators = estimators
        self.weights = weights

    def _weights(self) -> np.ndarray:
        n = len(self.estimators)
        weights = np.full(n, 1.0 / n) if self.weights is None else np.asarray(self.weights, dtype=float)
        if weights.shape != (n,) or not np.isclose(weights.sum(), 1.0) or (weights < 0).any():
            raise ValueError(f"weights must be {n} non-negative numbers summing to 1, got {self.weights}")
        return weights

    def fit(self, X, y, **fit_params) -> LogOddsBlend:
        """Fit a clone of every member (``fit_params``, e.g. ``times``, are passed to each)."""
        if not self.estimators:
            raise ValueError("LogOddsBlend needs at least one estimator")
        fitted = [clone(e).fit(X, y, **fit_params) for e in self.estimators]
        return self.set_fitted(fitted)

    def set_fitted(self, fitted: list) -> LogOddsBlend:
        """Use already fitted members (same order as ``estimators``) instead of fitting them again."""
        self.weights_ = self._weights()
        self.estimators_ = list(fitted)
        self.classes_ = fitted[0].classes_
        for attribute in ("n_features_in_", "feature_names_in_"):
            if hasattr(fitted[0], attribute):
                setattr(self, attribute, getattr(fitted[0], attribute))
        return self

    def decision_function(self, X) -> np.ndarray:
        """The weighted average of the members' log-odds."""
        check_is_fitted(self, "estimators_")
        return sum(
            w * np.asarray(e.decision_function(X), dtype=float)
            for w, e in zip(self.weights_, self.estimators_, strict=True)
        )

    def predict_proba(self, X) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def make_candidates(kinds: Mapping[str, str], names=CANDIDATES, random_state: int = 0) -> dict[str, Pipeline]:
    """The candidate pipelines by name, for columns of the given kinds.

    ``blend`` is not a pipeline: training builds it from the fitted ``logistic`` and ``gradient_boosting``
    candidates, so it is not returned here.

    Examples
    --------
    >>> sorted(make_candidates({"calls": "numeric"}))
    ['gradient_boosting', 'logistic', 'naive_bayes']
    """
    builders = {
        "logistic": lambda: logistic_pipeline(kinds),
        "gradient_boosting": lambda: gradient_boosting_pipeline(kinds, random_state=random_state),
        "naive_bayes": lambda: naive_bayes_pipeline(kinds),
    }
    unknown = [n for n in names if n not in builders and n != "blend"]
    if unknown:
        raise ValueError(f"unknown candidate(s) {unknown}; choose from {[*builders, 'blend']}")
    return {name: builders[name]() for name in names if name != "blend"}
