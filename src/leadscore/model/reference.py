"""The training data's distribution, kept with a model version so that drift can be measured against it later.

For every model input: its bins and the share of the training rows in each, and its missing-value rate; the
same for the model's own scores on the training rows. Numbers are cut at their training deciles (ties merged,
so a count that is mostly zero gets a bin of its own for zero); categories keep the
:data:`MAX_CATEGORIES` most frequent ones by name and the rest as one "other" bin, and the full list of the
categories seen (up to :data:`MAX_SEEN`) so that a value never seen in training is told apart from a rare one.
Every bin list ends with a "missing" bin.

It lives in ``model/`` (not ``monitoring/``) because it is made at training time and logged with the run
(:mod:`leadscore.registry.tracking`, artifact :data:`REFERENCE_ARTIFACT`); the drift monitor
(:mod:`leadscore.monitoring.drift`) reads it back.

Examples
--------
>>> X = pd.DataFrame({"calls": [0, 0, 1, 2, 5, None], "source": ["web", "web", "ads", "web", "ads", None]})
>>> ref = training_reference(X, {"calls": "numeric", "source": "categorical"}, np.linspace(0, 1, 6))
>>> ref.features["source"].categories
['web', 'ads']
>>> counts, unseen = ref.features["source"].bin_counts(pd.Series(["web", "partner", None]))
>>> counts.tolist(), unseen
([1, 0, 1, 1], {'partner': 1})
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

#: Where the reference is logged in a version's MLflow run.
REFERENCE_ARTIFACT = "monitoring/reference.json"
#: Quantiles that cut a number into bins (deciles).
QUANTILES = tuple(np.round(np.arange(1, 10) / 10, 1))
#: Categories kept by name (the most frequent); the rest of those seen in training are "other".
MAX_CATEGORIES = 30
#: Categories remembered as seen in training; past this many, nothing counts as unseen for that input.
MAX_SEEN = 2000
SCORE = "score"
#: The input that says whether a lead is being worked: days since its last interaction.
LAST_INTERACTION = "days_since_last_interaction"


def worked_rows(X: pd.DataFrame, horizon_days: float) -> np.ndarray:
    """The rows of leads being worked: an interaction within the horizon, or none yet (a new lead).

    Leads nobody has touched for a whole horizon pile up in every CRM (they are left open, not closed); by their
    number alone they would move the population the drift monitor compares, so it compares the worked leads and
    reports the share of the others apart. A table without the input (a flat export) counts every row.
    """
    if LAST_INTERACTION not in X.columns:
        return np.ones(len(X), dtype=bool)
    days = pd.to_numeric(X[LAST_INTERACTION], errors="coerce").to_numpy(dtype=float)
    return ~(days > horizon_days)


@dataclass
class FeatureReference:
    """One input's training distribution.

    ``kind`` is "numeric" (bins cut at ``edges``: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``) or
    "categorical" (one bin per name in ``categories``, then "other"); ``proportions`` has one share per bin,
    then the missing bin's. ``seen`` lists every category of the training data (empty for numbers, or when
    more than :data:`MAX_SEEN`: then ``seen_complete`` is False).
    """

    name: str
    kind: str
    proportions: list[float]
    missing_rate: float
    edges: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    seen_complete: bool = True
    dates: bool = False  # a date input, binned as days since the epoch

    def bin_labels(self) -> list[str]:
        """A readable name per bin, the missing bin last."""
        if self.kind == "numeric":
            ends = ["-inf", *(f"{e:g}" for e in self.edges), "inf"]
            return [f"({lo}, {hi}]" for lo, hi in zip(ends[:-1], ends[1:], strict=True)] + ["missing"]
        return [*self.categories, "other", "missing"]

    def bin_counts(self, values: pd.Series) -> tuple[np.ndarray, dict[str, int]]:
        """How many of ``values`` fall in each bin (missing last), and the categories never seen in training
        with their counts (they are counted in "other")."""
        if self.kind == "numeric":
            x = (_date_days(values) if self.dates else pd.to_numeric(values, errors="coerce")).to_numpy(dtype=float)
            missing = np.isnan(x)
            idx = np.searchsorted(np.asarray(self.edges, dtype=float), x[~missing], side="left")
            counts = np.bincount(idx, minlength=len(self.edges) + 1)
            return np.append(counts, missing.sum()), {}
        text = _as_text(values)
        missing = text.isna()
        present = text[~missing]
        position = {c: i for i, c in enumerate(self.categories)}
        idx = present.map(position).fillna(len(self.categories)).to_numpy(dtype=int)
        counts = np.bincount(idx, minlength=len(self.categories) + 1)
        unseen: dict[str, int] = {}
        if self.seen_complete:
            new = present[~present.isin(self.seen)]
            unseen = {str(k): int(v) for k, v in new.value_counts().items()}
        return np.append(counts, missing.sum()), unseen


@dataclass
class TrainingReference:
    """The training distribution of every model input (``features``) and of the model's score (``score``)."""

    features: dict[str, FeatureReference]
    score: FeatureReference
    rows: int
    unworked_share: float = 0.0  # the share of training rows left out: leads not worked for a horizon

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "unworked_share": self.unworked_share,
            "score": asdict(self.score),
            "features": [asdict(f) for f in self.features.values()],
        }

    @classmethod
    def from_dict(cls, data: dict) -> TrainingReference:
        features = {f["name"]: FeatureReference(**f) for f in data["features"]}
        return cls(
            features=features,
            score=FeatureReference(**data["score"]),
            rows=int(data["rows"]),
            unworked_share=float(data.get("unworked_share", 0.0)),
        )


def _as_text(values: pd.Series) -> pd.Series:
    """Values as text, missing as NA (booleans and numbers said as they print)."""
    missing = values.isna()
    return values.astype("object").where(~missing).map(str, na_action="ignore")


def feature_reference(name: str, values: pd.Series, kind: str) -> FeatureReference:
    """One input's reference from its training values (a "boolean" or "date" kind is binned as categorical or
    numeric)."""
    n = max(len(values), 1)
    if kind in ("numeric", "date"):
        x = pd.to_numeric(values, errors="coerce") if kind == "numeric" else _date_days(values)
        x = x.to_numpy(dtype=float)
        present = x[~np.isnan(x)]
        edges = np.unique(np.quantile(present, QUANTILES)).tolist() if len(present) else []
        ref = FeatureReference(
            name=name, kind="numeric", proportions=[], missing_rate=0.0, edges=edges, dates=kind == "date"
        )
    else:
        text = _as_text(values).dropna()
        frequency = text.value_counts()
        ref = FeatureReference(
            name=name,
            kind="categorical",
            proportions=[],
            missing_rate=0.0,
            categories=[str(c) for c in frequency.index[:MAX_CATEGORIES]],
            seen=sorted(str(c) for c in frequency.index) if len(frequency) <= MAX_SEEN else [],
            seen_complete=len(frequency) <= MAX_SEEN,
        )
    counts, _ = ref.bin_counts(values)
    ref.proportions = (counts / n).tolist()
    ref.missing_rate = float(counts[-1] / n)
    return ref


def _date_days(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)


def training_reference(
    X: pd.DataFrame, kinds: dict[str, str], scores: np.ndarray, horizon_days: float | None = None
) -> TrainingReference:
    """The reference of a model's training rows ``X`` (columns typed by ``kinds``) and its ``scores`` on them.

    With ``horizon_days``, only the rows of leads being worked (:func:`worked_rows`) make the reference, and the
    share of the others is kept as ``unworked_share``.

    Parameters
    ----------
    X : DataFrame
        The model's input columns, one row per training example (for CRM data: the weekly snapshots).
    kinds : dict of str to str
        Each column's kind (:mod:`leadscore.model.kinds`); a column without one is numeric if its dtype is.
    scores : array of float
        The model's probability for each row.
    horizon_days : float, optional
        The model's horizon (CRM snapshots).
    """
    scores = np.asarray(scores, dtype=float)
    worked = worked_rows(X, horizon_days) if horizon_days is not None else np.ones(len(X), dtype=bool)
    unworked_share = float(1.0 - worked.mean()) if len(X) else 0.0
    X, scores = X[worked], scores[worked]
    features = {}
    for name in X.columns:
        kind = kinds.get(name) or ("numeric" if pd.api.types.is_numeric_dtype(X[name]) else "categorical")
        features[str(name)] = feature_reference(str(name), X[name], kind)
    score = feature_reference(SCORE, pd.Series(scores), "numeric")
    return TrainingReference(features=features, score=score, rows=len(X), unworked_share=unworked_share)
