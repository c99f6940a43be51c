"""How good a probability is: ranking, calibration and what a sales team gets from working the top of the list.

Every function takes the true labels (0/1) and the predicted probabilities of the positive class, as arrays of
the same length, and returns plain numbers or small frames, so that the same figures go to the terminal, to
MLflow and to the README.

- ranking: ROC AUC, PR AUC (average precision);
- probability quality: log loss, Brier score, expected calibration error (ECE), the calibration slope and the
  calibration table;
- what a sales team gets: lift and capture rate in the top 10 % and 20 % of leads by score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

TOP_FRACTIONS: tuple[float, ...] = (0.1, 0.2)
EPS = 1e-15


def _check(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_prob has {p.size}")
    if y.size == 0:
        raise ValueError("no examples to evaluate")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must hold only 0 and 1")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("y_prob must hold probabilities in [0, 1] without missing values")
    return y, p


def expected_calibration_error(y_true, y_prob, n_bins: int = 10, strategy: str = "quantile") -> float:
    """Expected calibration error: the example-weighted mean gap between predicted and observed rates.

    The predictions are cut into ``n_bins`` bins (equal counts with ``strategy="quantile"``, equal widths on
    [0, 1] with ``"uniform"``); in each bin the gap is ``|mean(y_prob) - mean(y_true)|``.

    Examples
    --------
    >>> expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], n_bins=2)
    0.0
    """
    table = calibration_table(y_true, y_prob, n_bins=n_bins, strategy=strategy)
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["mean_predicted"] - table["observed_rate"]).abs()).sum())


def calibration_slope(y_true, y_prob) -> tuple[float, float]:
    """The calibration slope and intercept: the logistic regression of the outcome on the predicted log-odds.

    A calibrated model has slope 1 and intercept 0. A slope below 1 says the predictions are spread too wide
    (too sure of themselves: typical when the world has shifted since training), above 1 too narrow; the
    intercept then says which way they are off on average. NaN when only one class is present or all
    predictions are equal (no slope to fit).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import expit
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=20_000); y = (rng.random(20_000) < expit(z)).astype(int)
    >>> slope, intercept = calibration_slope(y, expit(2 * z))  # twice as spread as the truth
    >>> round(slope, 1), abs(intercept) < 0.05
    (0.5, True)
    """
    from sklearn.linear_model import LogisticRegression

    y, p = _check(y_true, y_prob)
    z = np.log(np.clip(p, EPS, 1 - EPS)) - np.log1p(-np.clip(p, EPS, 1 - EPS))
    if not 0 < y.sum() < y.size or np.ptp(z) == 0:
        return float("nan"), float("nan")
    fitted = LogisticRegression(C=np.inf).fit(z.reshape(-1, 1), y)  # C=inf: no penalty
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def _bin_ids(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.minimum((p * n_bins).astype(int), n_bins - 1)
    if strategy == "quantile":
        # Ranks, not value quantiles: ties never make a bin disappear, and bins hold equal counts.
        order = np.argsort(p, kind="stable")
        ids = np.empty(p.size, dtype=int)
        ids[order] = (np.arange(p.size) * n_bins) // p.size
        return ids
    raise ValueError(f"strategy {strategy!r} is not 'quantile' or 'uniform'")


def calibration_table(y_true, y_prob, n_bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Predicted against observed conversion rates by bin of predicted probability (deciles by default).

    Returns
    -------
    DataFrame
        One row per non-empty bin, from the lowest predictions to the highest: ``bin`` (1-based), ``n``,
        ``min_predicted``, ``max_predicted``, ``mean_predicted``, ``observed_rate`` and ``positives``.

    Examples
    --------
    >>> calibration_table([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)["observed_rate"].tolist()
    [0.0, 1.0]
    """
    y, p = _check(y_true, y_prob)
    ids = _bin_ids(p, n_bins, strategy)
    frame = pd.DataFrame({"bin": ids + 1, "p": p, "y": y})
    table = frame.groupby("bin", sort=True).agg(
        n=("y", "size"),
        min_predicted=("p", "min"),
        max_predicted=("p", "max"),
        mean_predicted=("p", "mean"),
        observed_rate=("y", "mean"),
        positives=("y", "sum"),
    )
    table["positives"] = table["positives"].astype(int)
    return table.reset_index()


def lift_and_capture(y_true, y_prob, fraction: float) -> tuple[float, float]:
    """Lift and capture rate when working the ``fraction`` of leads with the highest scores.

    Lift is the conversion rate in the top ``fraction`` divided by the overall rate; capture is the share of
    all conversions found there. The top is ``ceil(fraction * n)`` leads; ties are broken by position.

    Examples
    --------
    >>> lift_and_capture([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], [.9, .1, .1, .1, .8, .1, .1, .1, .1, .1], 0.2)
    (5.0, 1.0)
    """
    y, p = _check(y_true, y_prob)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    total = y.sum()
    if total == 0:
        return float("nan"), float("nan")
    k = int(np.ceil(fraction * y.size))
    top = np.argsort(-p, kind="stable")[:k]
    captured = y[top].sum()
    return float((captured / k) / (total / y.size)), float(captured / total)


def cumulative_gain(y_true, y_prob) -> pd.DataFrame:
    """The cumulative gain curve: share of leads worked (best first) against share of conversions found.

    Examples
    --------
    >>> cumulative_gain([1, 0], [0.9, 0.1])["captured"].tolist()
    [0.0, 1.0, 1.0]
    """
    y, p = _check(y_true, y_prob)
    order = np.argsort(-p, kind="stable")
    found = np.concatenate([[0.0], np.cumsum(y[order])])
    total = max(y.sum(), 1.0)
    worked = np.arange(y.size + 1) / y.size
    return pd.DataFrame({"worked": worked, "captured": found / total})


def evaluate(y_true, y_prob, n_bins: int = 10) -> dict[str, float]:
    """Every headline metric of one set of predictions, as a flat dict of floats.

    Keys: ``n``, ``base_rate``, ``mean_predicted``, ``roc_auc``, ``pr_auc``, ``log_loss``, ``brier``, ``ece``,
    and ``lift_top10``, ``capture_top10``, ``lift_top20``, ``capture_top20``. AUCs are NaN when only one class
    is present.

    Examples
    --------
    >>> m = evaluate([0, 1, 0, 1], [0.2, 0.8, 0.3, 0.6])
    >>> m["roc_auc"], m["base_rate"]
    (1.0, 0.5)
    """
    y, p = _check(y_true, y_prob)
    both = 0 < y.sum() < y.size
    out: dict[str, float] = {
        "n": float(y.size),
        "base_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "ece": expected_calibration_error(y, p, n_bins=n_bins),
    }
    for fraction in TOP_FRACTIONS:
        lift, capture = lift_and_capture(y, p, fraction)
        pct = int(round(fraction * 100))
        out[f"lift_top{pct}"] = lift
        out[f"capture_top{pct}"] = capture
    return out
