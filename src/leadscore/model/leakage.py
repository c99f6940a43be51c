"""The leakage guard: columns that give the outcome away before a model is trained on them.

Real exports carry columns written after the fact: a rep-entered "won reason", a call duration recorded once the
call (and the sale) was over. A model trained on them looks brilliant in validation and is useless on open
leads. Three rules flag a column:

1. **Too good alone**: the column on its own separates converted from unconverted leads with ROC AUC above
   0.95 (out-of-fold: each row scored by the conversion rate of its bin in the other folds, so that
   identifiers and high-cardinality codes do not look good by memorising rows).
2. **Filled in for converted leads**: the column is blank for most leads but, where filled in, the leads mostly
   converted (at least half of them, at least 3 times the base rate) and it is filled in for at least 30 % of
   the converted ones.
3. **Carries the outcome beyond everything else**: among the five strongest single columns, one whose removal
   costs a quick gradient-boosting model of all columns more than 0.08 AUC, when that model with it looks too
   good (AUC at least 0.90); fitted on three fifths of at most 10,000 rows, scored on the rest. Honest
   predictors overlap with one another; a leak adds information nothing else has, and makes the model look
   brilliant. This is the rule that catches the call ``duration`` in the UCI Bank Marketing data: on its own
   its AUC is about 0.82, barely above honest macro-economic columns (about 0.78), but a model of all columns
   reaches 0.94 with it and 0.78 without it, while no other column adds more than 0.003. On the simulated CRM
   no column adds more than 0.004. An honest but dominant predictor in a modest model (adding 0.09 to an AUC of
   0.74 in the tests) is not flagged. Two copies of the same leak hide each other from this rule (each adds
   nothing beyond the other); rules 1 and 2 still see them.

The thresholds are module constants; training refuses a flagged column unless told ``--allow-leaky``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OrdinalEncoder

from leadscore.model.cleaning import TableCleaner
from leadscore.model.kinds import CATEGORICAL
from leadscore.model.threads import limited_threads

SINGLE_AUC_LIMIT = 0.95
FILLED_SHARE_LIMIT = 0.5  # converted share among the rows where the column is filled in
FILLED_LIFT_LIMIT = 3.0
FILLED_COVERAGE = 0.3  # share of converted rows where it is filled in
MOSTLY_BLANK = 0.5  # the column is blank for more than this share of rows
UPLIFT_LIMIT = 0.08
UPLIFT_MIN_AUC = 0.90  # ... and only when the model with the column reaches this AUC
UPLIFT_CANDIDATES = 5
UPLIFT_MAX_ROWS = 10_000
N_BINS = 20
N_FOLDS = 5


@dataclass(frozen=True)
class LeakyColumn:
    """A column flagged by the guard, with the rule and the evidence."""

    column: str
    rule: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.column!r}: {self.rule} ({self.evidence})"


class LeakageError(ValueError):
    """Training refused: some columns look like they give the outcome away."""

    def __init__(self, leaks: list[LeakyColumn]):
        self.leaks = leaks
        lines = "\n".join(f"- {leak}" for leak in leaks)
        names = ", ".join(sorted({leak.column for leak in leaks}))
        super().__init__(
            f"column(s) {names} look like they give the outcome away:\n{lines}\n"
            "Drop them (--drop), or train anyway with --allow-leaky if you know they are filled in before the "
            "outcome is known."
        )


def _bins(values: pd.Series, kind: str) -> np.ndarray:
    """Integer codes: quantile bins for numbers, categories for text; missing values get their own code."""
    if kind == CATEGORICAL:
        codes = pd.Series(values, dtype=object).astype("category").cat.codes.to_numpy()
        return np.where(codes < 0, codes.max() + 1, codes)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    filled = numbers[~np.isnan(numbers)]
    if filled.size == 0:
        return np.zeros(len(numbers), dtype=int)
    edges = np.unique(np.quantile(filled, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    codes = np.searchsorted(edges, numbers, side="right")
    return np.where(np.isnan(numbers), len(edges) + 1, codes)


def single_column_auc(values: pd.Series, y: np.ndarray, kind: str, random_state: int = 0) -> float:
    """Out-of-fold ROC AUC of one column alone (bins scored by their smoothed conversion rate elsewhere).

    Returns ``max(auc, 1 - auc)``: a column that separates the classes upside down gives the outcome away too.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> y = np.array([0, 1] * 50)
    >>> single_column_auc(pd.Series(y * 10.0), y, "numeric") > 0.99
    True
    """
    codes = _bins(values, kind)
    y = np.asarray(y, dtype=float)
    prior = y.mean()
    n_codes = int(codes.max()) + 1
    fold = _folds(len(y), random_state)
    # Per fold, the bins' counts over the other folds: totals minus the fold's own.
    counts = np.zeros((N_FOLDS, n_codes))
    hits = np.zeros((N_FOLDS, n_codes))
    np.add.at(counts, (fold, codes), 1.0)
    np.add.at(hits, (fold, codes), y)
    other_counts = counts.sum(axis=0) - counts
    other_hits = hits.sum(axis=0) - hits
    rate = (other_hits + 10 * prior) / (other_counts + 10)  # shrunk towards the base rate
    auc = roc_auc_score(y, rate[fold, codes])
    return float(max(auc, 1 - auc))


def _folds(n: int, random_state: int) -> np.ndarray:
    """A random fold (0..N_FOLDS-1) for each of ``n`` rows, in equal shares."""
    return np.random.default_rng(random_state).permutation(np.arange(n) % N_FOLDS)


def _filled_for_converted(values: pd.Series, y: np.ndarray) -> str | None:
    filled = values.notna().to_numpy()
    if filled.all() or (~filled).mean() <= MOSTLY_BLANK or filled.sum() == 0:
        return None
    base = y.mean()
    share = y[filled].mean()
    coverage = filled[y == 1].mean() if y.sum() else 0.0
    if share >= FILLED_SHARE_LIMIT and share >= FILLED_LIFT_LIMIT * base and coverage >= FILLED_COVERAGE:
        return (
            f"filled in for {filled.mean():.0%} of leads; {share:.0%} of those converted against {base:.0%} "
            f"overall, and it is filled in for {coverage:.0%} of the converted leads"
        )
    return None


def _quick_auc(frame: pd.DataFrame, y: np.ndarray, categorical: list[str], random_state: int) -> float:
    model = HistGradientBoostingClassifier(
        max_iter=40,
        learning_rate=0.2,
        categorical_features=[c in categorical for c in frame.columns] if categorical else None,
        early_stopping=False,
        random_state=random_state,
    )
    # One split, three fifths to fit and two fifths to score: the uplift looked for is large (see UPLIFT_LIMIT).
    test = _folds(len(y), random_state) < N_FOLDS // 3 + 1
    model.fit(frame[~test], y[~test])
    return float(roc_auc_score(y[test], model.predict_proba(frame[test])[:, 1]))


def _uplifts(
    cleaned: pd.DataFrame, y: np.ndarray, kinds, columns: list[str], random_state: int
) -> tuple[float, dict[str, float]]:
    """The quick model's AUC with all columns, and how much it loses without each of ``columns``."""
    rng = np.random.default_rng(random_state)
    rows = np.arange(len(y))
    if len(rows) > UPLIFT_MAX_ROWS:
        rows = np.sort(rng.choice(rows, UPLIFT_MAX_ROWS, replace=False))
    sample, target = cleaned.iloc[rows], y[rows]
    categorical = [c for c in sample.columns if kinds[c] == CATEGORICAL]
    encoded = sample.copy()
    if categorical:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan, max_categories=200
        )
        encoded[categorical] = encoder.fit_transform(sample[categorical].astype(object))
    encoded = encoded.astype(float)
    full = _quick_auc(encoded, target, categorical, random_state)
    out = {}
    for column in columns:
        others = [c for c in encoded.columns if c != column]
        if not others:
            continue
        out[column] = full - _quick_auc(encoded[others], target, [c for c in categorical if c != column], random_state)
    return full, out


def find_leaky_columns(
    X: pd.DataFrame, y: np.ndarray, kinds: Mapping[str, str], *, random_state: int = 0
) -> list[LeakyColumn]:
    """Flag the columns of the raw table ``X`` that give the label ``y`` away (see the module's rules).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> X = pd.DataFrame({"honest": rng.normal(size=400) + y, "won_reason": np.where(y == 1, "price", None)})
    >>> [leak.column for leak in find_leaky_columns(X, y, {"honest": "numeric", "won_reason": "categorical"})]
    ['won_reason']
    """
    y = np.asarray(y, dtype=int)
    if y.min() == y.max():
        return []
    with limited_threads():
        return _find(X, y, kinds, random_state)


def _find(X: pd.DataFrame, y: np.ndarray, kinds: Mapping[str, str], random_state: int) -> list[LeakyColumn]:
    cleaned = TableCleaner(kinds=dict(kinds)).fit_transform(X)
    leaks: list[LeakyColumn] = []
    aucs: dict[str, float] = {}
    for column in cleaned.columns:
        auc = single_column_auc(cleaned[column], y, kinds[column], random_state)
        aucs[column] = auc
        if auc > SINGLE_AUC_LIMIT:
            leaks.append(LeakyColumn(column, f"AUC on its own above {SINGLE_AUC_LIMIT}", f"AUC {auc:.3f}"))
        filled = _filled_for_converted(cleaned[column], y)
        if filled:
            leaks.append(LeakyColumn(column, "filled in mostly for converted leads", filled))
    flagged = {leak.column for leak in leaks}
    strongest = [c for c in sorted(aucs, key=aucs.get, reverse=True) if c not in flagged][:UPLIFT_CANDIDATES]
    if len(cleaned.columns) > 1 and strongest and min(np.bincount(y)) >= 2 * N_FOLDS:
        # Columns already flagged are left out of the quick models: they would mask every other column.
        honest = cleaned.drop(columns=sorted(flagged))
        full, uplifts = _uplifts(honest, y, kinds, strongest, random_state)
        for column, uplift in uplifts.items():
            if uplift > UPLIFT_LIMIT and full >= UPLIFT_MIN_AUC:
                leaks.append(
                    LeakyColumn(
                        column,
                        f"adds more than {UPLIFT_LIMIT} AUC beyond all other columns together",
                        f"AUC on its own {aucs[column]:.3f}; a model of all columns reaches {full:.3f} with it "
                        f"and {full - uplift:.3f} without it",
                    )
                )
    return leaks
