"""Calibration fitted on the latest slice of the training data, never on the period the model is judged on.

:class:`TimeCalibratedClassifier` wraps any binary classifier. Its ``fit``:

1. splits the examples it is given by time: earlier ones to fit the classifier, the latest ``calibration_fraction``
   to fit the calibrator (with the same purge of overlapping label windows as the validation split);
2. fits the calibrator on the classifier's out-of-time scores for that latest slice (Platt's sigmoid on the
   log-odds, or isotonic regression);
3. refits the classifier on all the examples it was given and keeps the calibrator.

So when training uses the earlier 80 % of the data, the validation period is never touched by either the
classifier or its calibration; and the final model, refitted on everything, is calibrated the same way as the
one that was validated.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from leadscore.model.splits import time_split

METHODS: tuple[str, ...] = ("sigmoid", "isotonic", "none")
PROB_EPS = 1e-6


def raw_log_odds(estimator, X) -> np.ndarray:
    """The positive class's uncalibrated log-odds from a fitted binary classifier.

    ``decision_function`` where the classifier has one (logistic regression, gradient boosting and naive Bayes
    all return log-odds there), else the logit of ``predict_proba``.
    """
    if hasattr(estimator, "decision_function"):
        scores = np.asarray(estimator.decision_function(X), dtype=float)
        return scores.ravel() if scores.ndim == 1 or scores.shape[1] == 1 else scores[:, 1] - scores[:, 0]
    proba = np.asarray(estimator.predict_proba(X), dtype=float)[:, 1]
    return logit(np.clip(proba, PROB_EPS, 1 - PROB_EPS))


def fit_platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``a, b`` such that ``sigmoid(a * score + b)`` fits ``y``, with Platt's smoothed targets.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = fit_platt(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 0, 1, 1]))
    >>> a > 0
    True
    """
    scores = np.asarray(scores, dtype=float)
    y = np.asarray(y, dtype=float)
    n_pos, n_neg = y.sum(), y.size - y.sum()
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * scores + params[1]
        # log(1 + exp(z)) - t z, stable; gradient (p - t) [score, 1]
        value = np.sum(np.logaddexp(0, z) - target * z)
        residual = expit(z) - target
        return float(value), np.array([np.dot(residual, scores), residual.sum()])

    # The slope stays non-negative: a calibration may flatten a ranking but never turn it upside down.
    result = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return float(result.x[0]), float(result.x[1])


class TimeCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A binary classifier calibrated on the latest slice of its training data, then refitted on all of it.

    Parameters
    ----------
    estimator : estimator
        A binary classifier with ``decision_function`` (log-odds) or ``predict_proba``.
    method : {"sigmoid", "isotonic", "none"}, default="sigmoid"
        Platt scaling of the log-odds (keeps explanations additive), isotonic regression, or no calibration.
    calibration_fraction : float, default=0.2
        Share of the latest examples held out to fit the calibrator.
    horizon : float, default=0.0
        Label window, in the unit of ``times``: earlier examples whose window reaches into the calibration slice
        are left out of the classifier fitted to produce the calibration scores.
    refit : bool, default=True
        Refit the classifier on all examples after calibrating (False keeps the one fitted on the earlier part).

    Attributes
    ----------
    estimator_ : estimator
        The fitted classifier whose scores are calibrated at prediction time.
    calibrator_ : IsotonicRegression or None
        The isotonic calibrator (None for the other methods).
    slope_, intercept_ : float
        Platt's ``a`` and ``b`` (1 and 0 without calibration; NaN for isotonic).
    classes_ : ndarray
        The two class labels.
    calibration_split_ : str
        How the calibration slice was chosen.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2)); y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    >>> model = TimeCalibratedClassifier(LogisticRegression()).fit(X, y, times=np.arange(400))
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(
        self,
        estimator=None,
        method: str = "sigmoid",
        calibration_fraction: float = 0.2,
        horizon: float = 0.0,
        refit: bool = True,
    ):
        self.estimator = estimator
        self.method = method
        self.calibration_fraction = calibration_fraction
        self.horizon = horizon
        self.refit = refit

    def fit(self, X, y, times=None) -> TimeCalibratedClassifier:
        """Fit classifier and calibrator; ``times`` orders the examples (None: no time, random slice)."""
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r} is not one of {list(METHODS)}")
        if self.estimator is None:
            raise ValueError("TimeCalibratedClassifier needs an estimator")
        y = column_or_1d(y)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(f"TimeCalibratedClassifier is for two classes, got {len(self.classes_)}")
        self.slope_, self.intercept_ = 1.0, 0.0
        self.calibrator_ = None
        if self.method == "none":
            self.estimator_ = clone(self.estimator).fit(X, y)
            return self._set_features(self.estimator_)
        split = self._calibration_split(times, y_idx)
        early = clone(self.estimator).fit(_rows(X, split.train), y[split.train])
        scores = raw_log_odds(early, _rows(X, split.valid))
        if self.method == "sigmoid":
            self.slope_, self.intercept_ = fit_platt(scores, y_idx[split.valid])
        else:
            self.slope_, self.intercept_ = float("nan"), float("nan")
            self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                scores, y_idx[split.valid]
            )
        self.estimator_ = clone(self.estimator).fit(X, y) if self.refit else early
        return self._set_features(self.estimator_)

    def _calibration_split(self, times, y_idx: np.ndarray):
        """The purged time split for calibration; without the purge when the data is too short for it.

        Dropping the purge only affects which examples fit the calibrator; the validation split that judges
        the calibrated model keeps its purge. ``calibration_split_`` says which split was used.
        """

        def usable(split) -> bool:
            return all(min(np.bincount(y_idx[part], minlength=2)) > 0 for part in (split.train, split.valid))

        try:
            split = time_split(times, self.horizon, self.calibration_fraction, y=y_idx)
            if usable(split):
                self.calibration_split_ = split.describe()
                return split
        except ValueError:
            pass
        split = time_split(times, 0.0, self.calibration_fraction, y=y_idx)
        if not usable(split):
            raise ValueError("the calibration slice or the part before it holds only one class: too few examples")
        self.calibration_split_ = split.describe() + " (no purge: the data is too short for the horizon)"
        return split

    def _set_features(self, fitted) -> TimeCalibratedClassifier:
        for attribute in ("n_features_in_", "feature_names_in_"):
            if hasattr(fitted, attribute):
                setattr(self, attribute, getattr(fitted, attribute))
        return self

    def raw_log_odds(self, X) -> np.ndarray:
        """The classifier's log-odds before calibration."""
        check_is_fitted(self, "estimator_")
        return raw_log_odds(self.estimator_, X)

    def _proba(self, X) -> np.ndarray:
        raw = self.raw_log_odds(X)
        if self.calibrator_ is not None:
            return np.clip(self.calibrator_.predict(raw), PROB_EPS, 1 - PROB_EPS)
        return expit(self.slope_ * raw + self.intercept_)

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log-odds of the positive class."""
        if self.calibrator_ is not None:
            return logit(self._proba(X))  # isotonic: already clipped away from 0 and 1
        return self.slope_ * self.raw_log_odds(X) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        p = self._proba(X)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self._proba(X) > 0.5).astype(int)]


def _rows(X, index: np.ndarray):
    return X.iloc[index] if hasattr(X, "iloc") else X[index]
