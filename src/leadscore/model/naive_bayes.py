"""A frequency-table naive Bayes classifier: the reference model some CRMs ship as "predictive scoring".

Every feature is turned into a small table of bins (quantile bins for numbers, the most frequent values for
categories, plus one bin for "other" and one for "missing"), each class's bin frequencies are counted with
Laplace smoothing, and the class probabilities follow from Bayes' rule under the naive assumption that features
are independent given the class. It is transparent (each feature's evidence is one number per bin), robust on
small data, and its log-odds are additive by construction, which makes its explanations exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

NUMERIC_BIN = "numeric"
CATEGORY_BIN = "categorical"


class FrequencyNaiveBayes(ClassifierMixin, BaseEstimator):
    """Naive Bayes on frequency tables: binned numbers and categories, with Laplace smoothing.

    Parameters
    ----------
    n_bins : int, default=10
        Quantile bins per numeric feature (fewer when values repeat).
    alpha : float, default=1.0
        Laplace smoothing: pseudo-count added to every bin of every class (and to each class's prior count).
    categorical_features : "auto" or sequence of int or str, default="auto"
        Which features are categories. "auto" takes the non-numeric columns of a DataFrame (none for arrays).
    max_categories : int, default=30
        The most frequent values of a categorical feature get a bin each; the rest share an "other" bin.
    evidence_weight : float, default=1.0
        Multiplies every feature's log-likelihood. Below 1 it tempers the naive assumption's overconfidence
        (used for cold-start models trained on few examples).

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    class_log_prior_ : ndarray of shape (n_classes,)
        Smoothed log prior of each class.
    feature_log_prob_ : list of ndarray of shape (n_classes, n_bins_j)
        Smoothed log P(bin | class) for every feature; bins empty in training get the same value for every
        class, so that an unseen category is no evidence either way.
    bin_edges_ : list of ndarray or None
        Inner quantile edges of each numeric feature (None for categorical ones).
    categories_ : list of list of str or None
        The categories with a bin of their own (None for numeric features).
    is_categorical_ : ndarray of bool
        Which features are categorical.
    expected_log_odds_ : float
        (Binary only.) The average log-odds over the training examples; with
        :meth:`log_odds_contributions` it decomposes every prediction exactly.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"source": ["web", "web", "event", "event"], "calls": [0, 1, 5, 7]})
    >>> model = FrequencyNaiveBayes(n_bins=2).fit(X, [0, 0, 1, 1])
    >>> model.predict(X).tolist()
    [0, 0, 1, 1]
    """

    def __init__(
        self,
        n_bins: int = 10,
        alpha: float = 1.0,
        categorical_features: str | Sequence[int] | Sequence[str] = "auto",
        max_categories: int = 30,
        evidence_weight: float = 1.0,
    ):
        self.n_bins = n_bins
        self.alpha = alpha
        self.categorical_features = categorical_features
        self.max_categories = max_categories
        self.evidence_weight = evidence_weight

    # -- input handling -----------------------------------------------------------------------------------------

    def _categorical_mask(self, X, n_features: int) -> np.ndarray:
        mask = np.zeros(n_features, dtype=bool)
        if isinstance(self.categorical_features, str):
            if self.categorical_features != "auto":
                raise ValueError(f"categorical_features={self.categorical_features!r}: use 'auto' or a list of columns")
            if isinstance(X, pd.DataFrame):
                mask[:] = [not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]) for c in X]
            return mask
        for item in self.categorical_features:
            if isinstance(item, str):
                if not isinstance(X, pd.DataFrame) or item not in X.columns:
                    raise ValueError(f"categorical feature {item!r} is not a column of X")
                mask[list(X.columns).index(item)] = True
            else:
                mask[int(item)] = True
        return mask

    def _columns(self, X, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        """Validated numeric matrix (NaN allowed) and object matrix of the categorical features."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] < 1:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
            mask = self._categorical_mask(X, X.shape[1]) if reset else self.is_categorical_
            numeric = X.iloc[:, np.flatnonzero(~mask)]
            num = (
                check_array(numeric, dtype=np.float64, ensure_all_finite="allow-nan", ensure_min_features=0)
                if numeric.shape[1]
                else np.empty((len(X), 0))
            )
            cat = X.iloc[:, np.flatnonzero(mask)].astype(object).to_numpy()
            return num, cat
        given = not isinstance(self.categorical_features, str)
        has_cat = (given and len(self.categorical_features) > 0) if reset else bool(self.is_categorical_.any())
        arr = validate_data(self, X, reset=reset, dtype=None if has_cat else np.float64, ensure_all_finite="allow-nan")
        mask = self._categorical_mask(arr, arr.shape[1]) if reset else self.is_categorical_
        num = arr[:, ~mask].astype(np.float64) if (~mask).any() else np.empty((arr.shape[0], 0))
        return num, arr[:, mask].astype(object)

    # -- binning ------------------------------------------------------------------------------------------------

    def _bins(self, num: np.ndarray, cat: np.ndarray) -> list[np.ndarray]:
        """Bin index of every example for every feature, in the original feature order."""
        out: list[np.ndarray] = [None] * len(self.is_categorical_)  # type: ignore[list-item]
        num_pos = np.flatnonzero(~self.is_categorical_)
        cat_pos = np.flatnonzero(self.is_categorical_)
        for k, j in enumerate(num_pos):
            values = num[:, k]
            edges = self.bin_edges_[j]
            ids = np.searchsorted(edges, values, side="right")
            ids[np.isnan(values)] = len(edges) + 1  # bins 0..len(edges) hold values; the last one is "missing"
            out[j] = ids
        for k, j in enumerate(cat_pos):
            values = pd.Series(cat[:, k], dtype=object)
            missing = values.isna().to_numpy()
            text = values.where(missing, values.astype(str))
            codes = pd.Index(self.categories_[j], dtype=object).get_indexer(text.to_numpy()).astype(np.int64)
            n_cat = len(self.categories_[j])
            codes[codes < 0] = n_cat  # other (unseen or rare)
            codes[missing] = n_cat + 1
            out[j] = codes
        return out

    # -- fit / predict ------------------------------------------------------------------------------------------

    def fit(self, X, y) -> FrequencyNaiveBayes:
        """Count each class's bin frequencies."""
        if self.n_bins < 1:
            raise ValueError(f"n_bins must be at least 1, got {self.n_bins}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive (Laplace smoothing), got {self.alpha}")
        num, cat = self._columns(X, reset=True)
        self.is_categorical_ = self._categorical_mask(X, self.n_features_in_)
        y = column_or_1d(y, warn=True)
        if len(y) != num.shape[0]:
            raise ValueError(f"X has {num.shape[0]} samples but y has {len(y)}")
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"naive Bayes needs examples of 2 classes, got 1 class: {self.classes_[0]!r}")
        n_classes = len(self.classes_)
        class_count = np.bincount(y_idx, minlength=n_classes).astype(float)
        self.class_count_ = class_count
        self.class_log_prior_ = np.log((class_count + self.alpha) / (class_count.sum() + n_classes * self.alpha))

        self.bin_edges_: list[np.ndarray | None] = []
        self.categories_: list[list[str] | None] = []
        num_k = cat_k = 0
        for j in range(self.n_features_in_):
            if self.is_categorical_[j]:
                values = pd.Series(cat[:, cat_k], dtype=object).dropna().astype(str)
                counts = values.value_counts(sort=True)
                self.categories_.append(sorted(counts.index[: self.max_categories].tolist()))
                self.bin_edges_.append(None)
                cat_k += 1
            else:
                values = num[:, num_k]
                filled = values[~np.isnan(values)]
                if filled.size:
                    qs = np.quantile(filled, np.linspace(0, 1, self.n_bins + 1)[1:-1])
                    edges = np.unique(qs)
                else:
                    edges = np.empty(0)
                self.bin_edges_.append(edges.astype(np.float64))
                self.categories_.append(None)
                num_k += 1
        bins = self._bins(num, cat)
        self.feature_log_prob_: list[np.ndarray] = []
        self.bin_count_: list[np.ndarray] = []
        for j, ids in enumerate(bins):
            n_bins_j = len(self.categories_[j]) + 2 if self.is_categorical_[j] else len(self.bin_edges_[j]) + 2
            counts = np.zeros((n_classes, n_bins_j))
            np.add.at(counts, (y_idx, ids), 1.0)
            self.bin_count_.append(counts)
            smoothed = counts + self.alpha
            log_prob = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
            # A bin no training example fell in (an unseen category, a missing value never seen) is no evidence
            # either way: the same log-probability for every class.
            empty = counts.sum(axis=0) == 0
            log_prob[:, empty] = log_prob[:, empty].mean(axis=0)
            self.feature_log_prob_.append(log_prob)
        if n_classes == 2:
            llr = self._feature_log_ratios(bins)
            self.expected_log_odds_ = float(self.class_log_prior_[1] - self.class_log_prior_[0] + llr.mean(0).sum())
            self.feature_mean_log_ratio_ = llr.mean(axis=0)
        return self

    def _feature_log_ratios(self, bins: list[np.ndarray]) -> np.ndarray:
        """Each feature's weighted log-likelihood ratio (class 1 over class 0) for every example."""
        out = np.empty((len(bins[0]) if bins else 0, len(bins)))
        for j, ids in enumerate(bins):
            table = self.feature_log_prob_[j]
            out[:, j] = self.evidence_weight * (table[1, ids] - table[0, ids])
        return out

    def predict_joint_log_proba(self, X) -> np.ndarray:
        """Unnormalised log P(class) + weighted sum of log P(bin | class), shape (n_samples, n_classes)."""
        check_is_fitted(self)
        num, cat = self._columns(X, reset=False)
        joint = np.tile(self.class_log_prior_, (num.shape[0], 1))
        for j, ids in enumerate(self._bins(num, cat)):
            joint += self.evidence_weight * self.feature_log_prob_[j][:, ids].T
        return joint

    def predict_log_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        joint = self.predict_joint_log_proba(X)
        top = joint.max(axis=1, keepdims=True)
        return joint - (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))

    def predict_proba(self, X) -> np.ndarray:
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_joint_log_proba(X), axis=1)]

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the second class for binary problems; joint log-probabilities otherwise."""
        joint = self.predict_joint_log_proba(X)
        if len(self.classes_) == 2:
            return joint[:, 1] - joint[:, 0]
        return joint

    def log_odds_contributions(self, X) -> np.ndarray:
        """Each feature's contribution to the log-odds, relative to the training average (binary only).

        ``expected_log_odds_ + contributions.sum(axis=1)`` equals :meth:`decision_function` exactly.
        """
        check_is_fitted(self)
        if len(self.classes_) != 2:
            raise ValueError("log-odds contributions are defined for two classes only")
        num, cat = self._columns(X, reset=False)
        return self._feature_log_ratios(self._bins(num, cat)) - self.feature_mean_log_ratio_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
