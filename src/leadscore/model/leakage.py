"""The leakage guard: columns that give the outcome away before a model is trained on them.

Real exports carry columns written after the fact: a rep-entered "won reason", a call duration recorded once the
call (and the sale) was over. A model trained on them looks brilliant in validation and is useless on open
leads. Four rules flag a column:

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
4. **Settles the outcome, like a status written after it**: a categorical column most of whose filled rows are in
   values that settle the outcome: values whose out-of-fold conversion rate is near 0 (at most a tenth of the base
   rate) or near 1 (its non-conversion rate at most a tenth of the base's). This is the salesperson's "status",
   "tags" or "quality" field filled in once the lead is won or lost ("closed", "lost to competitor", "not
   interested", a grade given in hindsight): sloppy bookkeeping (won leads left "interested", lost ones never
   updated) keeps it below rule 1's AUC, and a status and a grade written from the same outcome hide each other from
   rule 3. A value's rate is shrunk towards the base rate as if it had 3 more conversions at that rate
   (:data:`SETTLED_PRIOR_CONVERSIONS`), so that a value is settled only on evidence: one never seen converting must
   hold rows enough to expect 27 conversions (270 rows at a base rate of 10 %), which chance alone leaves without a
   conversion about twice in 10^12. The column is flagged when 60 % of its filled rows are in settled values; each
   of two hints lowers the bar by 15 points: a name like a status's (status, tag, quality, stage, result, outcome,
   reason, disposition; estado, etiqueta, calidad, resultado, motivo; :func:`status_word`), and blanks where the
   outcome is not known yet (blank for at least 2 % of the rows, and those rows mostly the latest in time, their
   median past the 75th percentile, or practically never converted, at most a tenth of the base rate). On the
   simulator's flat export (:mod:`leadscore.simulation.flat_export`, 20,000 leads) the rep-maintained status has
   75 % of its filled rows in settled values and the hindsight grade 47 %, with both hints (bar 30 %), while their AUCs
   alone are 0.94 and 0.92 and rules 1 to 3 flag neither. Honest categorical columns have no settled values at all:
   the simulated lead attributes, the CRM snapshots' features (the ``stage`` at the cutoff included) and every UCI
   Bank Marketing column. A strong honest column known when the lead is created (the export's company-fit score,
   0.76 alone) has none either: it raises the odds of a win without deciding it.

The thresholds are module constants; training refuses a flagged column unless told ``--allow-leaky``.
:func:`check_columns` returns the evidence for every column as a :class:`GuardReport`, which training keeps and
the MLflow run logs (``leakage_guard.json``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

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
# Rule 4: values that settle the outcome.
SETTLED_LIFT = 0.1  # near 0: a conversion rate at most this share of the base rate (near 1: the same for not)
SETTLED_PRIOR_CONVERSIONS = 3.0  # a value's rate is shrunk as if it had this many more conversions at the base rate
SETTLED_SHARE = 0.6  # flagged when this share of the filled rows is in settled values ...
SETTLED_HINT_DISCOUNT = 0.15  # ... less this much for each hint (a status-like name, blanks where it is not known)
BLANK_HINT_MIN = 0.02  # blanks are a hint only when at least this share of the rows is blank ...
BLANK_LATEST = 0.75  # ... and their median position in time is past this quantile (or they practically never converted)
STATUS_WORDS = (
    "status", "tag", "quality", "stage", "result", "outcome", "reason", "disposition",
    "estado", "etiqueta", "calidad", "resultado", "motivo",
)  # fmt: skip
VALUES_SHOWN = 6  # values named in a settled column's evidence


@dataclass(frozen=True)
class LeakyColumn:
    """A column flagged by the guard, with the rule and the evidence (``key`` names the rule for machines)."""

    column: str
    rule: str
    evidence: str
    key: str = ""

    def __str__(self) -> str:
        return f"{self.column!r}: {self.rule} ({self.evidence})"


@dataclass(frozen=True, kw_only=True)
class ColumnCheck:
    """What the guard measured on one column: each rule's figure, and the rules that flagged it."""

    column: str
    kind: str
    single_auc: float  # rule 1
    filled_share: float
    converted_share_where_filled: float | None  # rule 2 (None when always filled)
    settled_share: float | None = None  # rule 4 (categorical columns only)
    settled_threshold: float | None = None
    status_name: str | None = None  # the word that makes the name look like a status's
    blank_hint: str | None = None
    uplift: float | None = None  # rule 3 (the strongest columns only)
    flagged_by: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GuardReport:
    """The guard's decision and evidence: every column checked, the rules' figures, what was flagged and why.

    ``allowed`` is set by training when flagged columns were kept anyway (``--allow-leaky``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> y = np.array([0, 1] * 100)
    >>> report = check_columns(pd.DataFrame({"x": np.arange(200) % 7}), y, {"x": "numeric"})
    >>> report.decision, report.metrics()["leakage_guard.columns_checked"]
    ('passed', 1.0)
    """

    checks: list[ColumnCheck]
    leaks: list[LeakyColumn]
    full_auc: float | None  # rule 3's quick model of all unflagged columns
    base_rate: float
    rows: int
    seconds: float
    allowed: bool = False

    @property
    def flagged(self) -> list[str]:
        return sorted({leak.column for leak in self.leaks})

    @property
    def decision(self) -> str:
        """The decision: "passed" (nothing flagged), "allowed" (flagged, kept by --allow-leaky) or "refused"."""
        return "passed" if not self.leaks else "allowed" if self.allowed else "refused"

    def allowing(self) -> GuardReport:
        """The same report, with the flagged columns kept by ``--allow-leaky``."""
        return replace(self, allowed=True)

    def to_dict(self) -> dict:
        """JSON-ready: the rules' thresholds, every column's figures, the flagged columns with the evidence."""
        return {
            "decision": self.decision,
            "flagged": self.flagged,
            "allowed_with_allow_leaky": self.flagged if self.allowed else [],
            "leaks": [
                {"column": x.column, "rule": x.key, "description": x.rule, "evidence": x.evidence} for x in self.leaks
            ],
            "rows": self.rows,
            "base_rate": self.base_rate,
            "all_columns_auc": self.full_auc,
            "seconds": round(self.seconds, 3),
            "thresholds": {
                "single_auc": SINGLE_AUC_LIMIT,
                "filled_share": FILLED_SHARE_LIMIT,
                "filled_lift": FILLED_LIFT_LIMIT,
                "filled_coverage": FILLED_COVERAGE,
                "mostly_blank": MOSTLY_BLANK,
                "uplift": UPLIFT_LIMIT,
                "uplift_min_auc": UPLIFT_MIN_AUC,
                "settled_lift": SETTLED_LIFT,
                "settled_prior_conversions": SETTLED_PRIOR_CONVERSIONS,
                "settled_share": SETTLED_SHARE,
                "settled_hint_discount": SETTLED_HINT_DISCOUNT,
            },
            "columns": [
                {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(check).items()} for check in self.checks
            ],
        }

    def params(self) -> dict[str, str]:
        """A few MLflow parameters: the decision and the flagged columns."""
        return {
            "leakage_guard.decision": self.decision,
            "leakage_guard.flagged": (", ".join(self.flagged) or "none")[:500],
        }

    def metrics(self) -> dict[str, float]:
        """A few MLflow metrics: how many columns were checked and flagged, the strongest single column."""
        aucs = [c.single_auc for c in self.checks]
        return {
            "leakage_guard.columns_checked": float(len(self.checks)),
            "leakage_guard.columns_flagged": float(len(self.flagged)),
            "leakage_guard.max_single_auc": float(max(aucs)) if aucs else 0.0,
        }


class LeakageError(ValueError):
    """Training refused: some columns look like they give the outcome away."""

    def __init__(self, leaks: list[LeakyColumn], report: GuardReport | None = None):
        self.leaks = leaks
        self.report = report
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


def status_word(name: str) -> str | None:
    """The word of a column's name that makes it look like a status (see :data:`STATUS_WORDS`), or None.

    The name is split into words at separators and at camel-case humps, so "tag" is not found in "percentage".

    Examples
    --------
    >>> status_word("Lead Status"), status_word("LeadQuality"), status_word("tags"), status_word("etiquetas")
    ('status', 'quality', 'tag', 'etiqueta')
    >>> status_word("poutcome"), status_word("percentage") is None
    (None, True)
    """
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name)).lower()
    for word in re.split(r"[^a-z0-9áéíóúñ]+", words):
        for stem in STATUS_WORDS:
            if word in (stem, f"{stem}s", f"{stem}es"):
                return stem
    return None


@dataclass(frozen=True)
class _Settled:
    """Rule 4's figures for one categorical column."""

    share: float  # of the filled rows, in settled values
    threshold: float
    status_name: str | None
    blank_hint: str | None
    values: str  # the values with their shares and rates, for the evidence


def _settled(values: pd.Series, y: np.ndarray, times: np.ndarray | None, name: str, random_state: int) -> _Settled:
    """The share of filled rows in values that settle the outcome (out of fold), and the hints that lower the bar."""
    filled = values.notna().to_numpy()
    base = float(y.mean())
    codes, names = pd.factorize(pd.Series(values, dtype=object))
    n_codes = max(len(names), 1)
    fold = _folds(len(y), random_state)
    counts = np.zeros((N_FOLDS, n_codes))
    hits = np.zeros((N_FOLDS, n_codes))
    np.add.at(counts, (fold[filled], codes[filled]), 1.0)
    np.add.at(hits, (fold[filled], codes[filled]), y[filled])
    other_counts = counts.sum(axis=0) - counts
    other_hits = hits.sum(axis=0) - hits
    # Shrunk towards the base rate by SETTLED_PRIOR_CONVERSIONS conversions (and as many non-conversions for the
    # other side), so that only a value with evidence enough is settled.
    k = SETTLED_PRIOR_CONVERSIONS
    rate = (other_hits + k) / (other_counts + k / base)
    miss = (other_counts - other_hits + k) / (other_counts + k / (1 - base))
    settled_code = (rate <= SETTLED_LIFT * base) | (miss <= SETTLED_LIFT * (1 - base))
    settled_row = np.zeros(len(y), dtype=bool)
    settled_row[filled] = settled_code[fold[filled], codes[filled]]
    share = float(settled_row[filled].mean()) if filled.any() else 0.0
    status_name = status_word(name)
    blank_hint = _blank_hint(filled, y, times, base)
    threshold = SETTLED_SHARE - SETTLED_HINT_DISCOUNT * ((status_name is not None) + (blank_hint is not None))
    return _Settled(share, threshold, status_name, blank_hint, _describe_values(codes, names, filled, y, settled_row))


def _blank_hint(filled: np.ndarray, y: np.ndarray, times: np.ndarray | None, base: float) -> str | None:
    """Blanks where the outcome is not known yet: the latest rows, or rows that practically never converted."""
    blank = ~filled
    if blank.mean() < BLANK_HINT_MIN:
        return None
    said = f"blank for {blank.mean():.0%} of rows"
    if times is not None and np.ptp(times) > 0:
        position = pd.Series(times).rank(pct=True).to_numpy()
        median = float(np.median(position[blank]))
        if median >= BLANK_LATEST:
            return f"{said}, mostly the latest (their median at the {median:.0%} point of the time order)"
    blank_rate = float(y[blank].mean())
    if blank_rate <= SETTLED_LIFT * base:
        return f"{said}, of which {blank_rate:.1%} converted against {base:.1%} overall (not known yet)"
    return None


def _describe_values(codes, names, filled, y, settled_row) -> str:
    """The most frequent values: their share of the filled rows, conversion rate, and whether they settle it."""
    if not filled.any():
        return ""
    count = np.bincount(codes[filled], minlength=len(names))
    converted = np.bincount(codes[filled], weights=y[filled], minlength=len(names))
    settled = np.bincount(codes[filled], weights=settled_row[filled], minlength=len(names))
    order = np.argsort(-count, kind="stable")[:VALUES_SHOWN]
    parts = [
        f"{names[i]!r} {count[i] / filled.sum():.0%} of filled rows, {converted[i] / count[i]:.0%} converted"
        + ("" if settled[i] >= count[i] / 2 else " (not settled)")
        for i in order
    ]
    more = len(names) - len(order)
    return "; ".join(parts) + (f"; {more} more value(s)" if more > 0 else "")


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
    X: pd.DataFrame,
    y: np.ndarray,
    kinds: Mapping[str, str],
    *,
    times: np.ndarray | None = None,
    random_state: int = 0,
) -> list[LeakyColumn]:
    """Flag the columns of the raw table ``X`` that give the label ``y`` away (see the module's rules).

    ``times`` (each row's time, optional) lets rule 4 see that a column is blank for the latest rows.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> X = pd.DataFrame({"honest": rng.normal(size=400) + y, "won_reason": np.where(y == 1, "price", None)})
    >>> leaks = find_leaky_columns(X, y, {"honest": "numeric", "won_reason": "categorical"})
    >>> [(leak.column, leak.key) for leak in leaks]
    [('won_reason', 'alone'), ('won_reason', 'settled_values')]
    """
    return check_columns(X, y, kinds, times=times, random_state=random_state).leaks


def check_columns(
    X: pd.DataFrame,
    y: np.ndarray,
    kinds: Mapping[str, str],
    *,
    times: np.ndarray | None = None,
    random_state: int = 0,
) -> GuardReport:
    """Run every rule on every column of the raw table ``X``: the flagged columns and the evidence for all.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> y = (rng.random(3000) < 0.1).astype(int)
    >>> status = np.where(y == 1, "closed", rng.choice(["not interested", "lost to competitor"], 3000))
    >>> status = np.where(rng.random(3000) < 0.3, "interested", status)  # bookkeeping is sloppy
    >>> report = check_columns(pd.DataFrame({"lead_status": status}), y, {"lead_status": "categorical"})
    >>> report.decision, [leak.key for leak in report.leaks]
    ('refused', ['settled_values'])
    """
    y = np.asarray(y, dtype=int)
    started = time.perf_counter()
    if y.min() == y.max():
        return GuardReport(checks=[], leaks=[], full_auc=None, base_rate=float(y.mean()), rows=len(y), seconds=0.0)
    with limited_threads():
        checks, leaks, full = _check(X, y, kinds, times, random_state)
    return GuardReport(
        checks=checks,
        leaks=leaks,
        full_auc=full,
        base_rate=float(y.mean()),
        rows=len(y),
        seconds=time.perf_counter() - started,
    )


def _check(X, y, kinds, times, random_state) -> tuple[list[ColumnCheck], list[LeakyColumn], float | None]:
    cleaned = TableCleaner(kinds=dict(kinds)).fit_transform(X)
    times = None if times is None else np.asarray(times, dtype=float)
    leaks: list[LeakyColumn] = []
    figures: dict[str, dict] = {}
    for column in cleaned.columns:
        values, kind = cleaned[column], kinds[column]
        filled = values.notna().to_numpy()
        auc = single_column_auc(values, y, kind, random_state)
        figures[column] = {
            "column": column,
            "kind": kind,
            "single_auc": auc,
            "filled_share": float(filled.mean()),
            "converted_share_where_filled": None if filled.all() or not filled.any() else float(y[filled].mean()),
        }
        if auc > SINGLE_AUC_LIMIT:
            leaks.append(LeakyColumn(column, f"AUC on its own above {SINGLE_AUC_LIMIT}", f"AUC {auc:.3f}", "alone"))
        filled_evidence = _filled_for_converted(values, y)
        if filled_evidence:
            leaks.append(
                LeakyColumn(column, "filled in mostly for converted leads", filled_evidence, "filled_for_converted")
            )
        if kind == CATEGORICAL:
            settled = _settled(values, y, times, column, random_state)
            figures[column] |= {
                "settled_share": settled.share,
                "settled_threshold": settled.threshold,
                "status_name": settled.status_name,
                "blank_hint": settled.blank_hint,
            }
            if settled.share >= settled.threshold:
                leaks.append(LeakyColumn(column, _SETTLED_RULE, _settled_evidence(settled), "settled_values"))
    flagged = {leak.column for leak in leaks}
    aucs = {column: f["single_auc"] for column, f in figures.items()}
    strongest = [c for c in sorted(aucs, key=aucs.get, reverse=True) if c not in flagged][:UPLIFT_CANDIDATES]
    full = None
    if len(cleaned.columns) > 1 and strongest and min(np.bincount(y)) >= 2 * N_FOLDS:
        # Columns already flagged are left out of the quick models: they would mask every other column.
        honest = cleaned.drop(columns=sorted(flagged))
        full, uplifts = _uplifts(honest, y, kinds, strongest, random_state)
        for column, uplift in uplifts.items():
            figures[column]["uplift"] = uplift
            if uplift > UPLIFT_LIMIT and full >= UPLIFT_MIN_AUC:
                leaks.append(
                    LeakyColumn(
                        column,
                        f"adds more than {UPLIFT_LIMIT} AUC beyond all other columns together",
                        f"AUC on its own {aucs[column]:.3f}; a model of all columns reaches {full:.3f} with it "
                        f"and {full - uplift:.3f} without it",
                        "beyond_others",
                    )
                )
    rules: dict[str, list[str]] = {}
    for leak in leaks:
        rules.setdefault(leak.column, []).append(leak.key)
    checks = [ColumnCheck(**f, flagged_by=tuple(rules.get(c, ()))) for c, f in figures.items()]
    return checks, leaks, full


_SETTLED_RULE = "most filled rows in values that settle the outcome, like a status written once it is known"


def _settled_evidence(settled: _Settled) -> str:
    hints = [f"it is named like a status ({settled.status_name!r})"] if settled.status_name else []
    hints += [f"it is {settled.blank_hint}"] if settled.blank_hint else []
    why = f", as {' and '.join(hints)}" if hints else ""
    return (
        f"{settled.share:.0%} of its filled rows are in values that convert at near 0 % or near 100 %; flagged "
        f"from {settled.threshold:.0%}{why}; values: {settled.values}"
    )
