"""Which lead attributes a model uses: a bounded, stated selection of a CRM's custom fields.

Real CRMs carry hundreds of custom fields, each filled for few leads. A model over all of them would cost
leads x every name ever seen in memory and time, at training and at every scoring, and would mostly learn noise.
So a CRM model reads a selection, chosen on the training data and recorded in the MLflow run and the model card:

1. **coverage**: the share of training snapshots whose lead has the field filled must be at least
   ``min_coverage``; of those fields, the ``4 * max_attributes`` best covered are measured (this bounds the cost:
   never more than that many columns of values are built, whatever the number of names);
2. **usefulness**: on the earlier training snapshots only (those whose label window closes before the validation
   period of :func:`leadscore.model.splits.time_split`: the validation labels never choose a field), the mutual
   information between the field's value and the label, with numbers in quantile bins, text by value (rare
   values pooled) and "not filled" as a value of its own, with the evidence that it is not chance (a G-test
   counting each lead once, as a lead's snapshots are not independent); a field whose p-value is above
   ``max_p_value`` is left out (by default none is: a small data set proves little, and the model's
   regularisation copes with a few idle columns);
3. at most ``max_attributes`` fields, the strongest evidence first (lowest p-value, then most information).

Scoring and the prioritised list then read these fields and no other (:attr:`leadscore.serving.scorer.Scorer.
attributes`), so their cost does not grow with the number of custom fields a CRM keeps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

#: Most distinct text values kept apart when measuring a field; rarer ones are pooled.
TOP_VALUES = 20
#: Quantile bins of a numeric field when measuring it.
NUMERIC_BINS = 10


@dataclass(frozen=True, kw_only=True)
class AttributeSelection:
    """How lead attributes are chosen (see the module's description).

    Parameters
    ----------
    max_attributes : int, default=30
        At most this many attributes in a model (0: none).
    min_coverage : float, default=0.05
        Share of the training snapshots whose lead has the attribute filled.
    max_p_value : float, default=1.0
        Leave out an attribute whose information on the label is more likely than this by chance (1.0: keep
        every measured one; 0.01: only those with clear evidence).

    Examples
    --------
    >>> AttributeSelection(max_attributes=10).max_attributes
    10
    """

    max_attributes: int = 30
    min_coverage: float = 0.05
    max_p_value: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attributes < 0:
            raise ValueError(f"max_attributes must be at least 0, got {self.max_attributes}")
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be between 0 and 1, got {self.min_coverage}")
        if not 0.0 < self.max_p_value <= 1.0:
            raise ValueError(f"max_p_value must be in (0, 1], got {self.max_p_value}")

    @property
    def measured(self) -> int:
        """How many of the best covered attributes are measured for usefulness."""
        return 4 * self.max_attributes


@dataclass(kw_only=True)
class SelectionReport:
    """The attributes chosen, and for every attribute of the data its coverage and why it was (not) chosen."""

    settings: AttributeSelection
    chosen: list[str]
    table: pd.DataFrame  # name, coverage, information_bits, p_value, chosen, reason

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready account, for the MLflow run."""
        rows = self.table.replace({np.nan: None}).to_dict("records")
        return {"settings": asdict(self.settings), "chosen": list(self.chosen), "attributes": rows}

    def notes(self) -> list[str]:
        """One line for the training notes."""
        n = len(self.table)
        if n == 0:
            return []
        s = self.settings
        more = " ..." if len(self.chosen) > 10 else ""
        return [
            f"lead attributes: {len(self.chosen)} of {n} used ({self.chosen[:10]}{more}); "
            f"chosen by coverage >= {s.min_coverage:.0%} of the training snapshots, then the strongest evidence of "
            f"information on the label (p <= {s.max_p_value:g}), at most {s.max_attributes}"
        ]


def _codes(values: pd.Series) -> tuple[np.ndarray, str]:
    """Each lead's value as a small integer code (0: not filled), and the reason the field cannot be measured."""
    filled = values.notna().to_numpy(copy=True)
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        text = values.astype("str").str.strip()
        filled = filled & (text != "").to_numpy()
        numbers = pd.to_numeric(text.where(filled), errors="coerce")
        if filled.any() and numbers.notna().to_numpy()[filled].all():
            values = numbers
        else:
            codes, uniques = pd.factorize(text.where(filled))
            if len(uniques) < 2:
                return np.zeros(len(values), dtype=np.int64), "a single value"
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            rank = np.empty(len(uniques), dtype=np.int64)
            rank[np.argsort(-counts, kind="stable")] = np.arange(len(uniques))
            pooled = np.minimum(rank, TOP_VALUES) + 1  # the rarer values share one code
            return np.where(codes >= 0, pooled[np.maximum(codes, 0)], 0), ""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    filled = filled & ~np.isnan(numbers)
    if np.unique(numbers[filled]).size < 2:
        return np.zeros(len(values), dtype=np.int64), "a single value"
    edges = np.unique(np.quantile(numbers[filled], np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]))
    bins = np.searchsorted(edges, np.where(filled, numbers, 0.0), side="right") + 1
    return np.where(filled, bins, 0), ""


def _information(codes: np.ndarray, rows: np.ndarray, positives: np.ndarray, n_leads: int) -> tuple[float, float]:
    """Mutual information (bits) of code and label over the weighted rows, and its G-test p-value (n = leads)."""
    n_c = np.bincount(codes, weights=rows)
    p_c = np.bincount(codes, weights=positives)
    total, pos = n_c.sum(), p_c.sum()
    if total == 0 or pos in (0, total):
        return 0.0, 1.0
    table = np.stack([p_c, n_c - p_c])[:, n_c > 0]
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(table > 0, table * np.log(table / expected), 0.0)
    mutual_nats = max(float(terms.sum() / total), 0.0)
    dof = table.shape[1] - 1
    p_value = float(chi2.sf(2.0 * n_leads * mutual_nats, dof)) if dof > 0 else 1.0
    return mutual_nats / np.log(2), p_value


def select_attributes(
    leads: pd.DataFrame,
    snapshots: pd.DataFrame,
    *,
    horizon_days: float,
    settings: AttributeSelection | None = None,
) -> SelectionReport:
    """Choose the lead attributes a model uses (see the module's description).

    Parameters
    ----------
    leads : DataFrame
        The leads table; its attributes are :func:`leadscore.features.history.attribute_names`.
    snapshots : DataFrame
        ``lead_id``, ``cutoff``, ``label``: the training snapshots
        (:func:`leadscore.features.training_set.label_snapshots`).
    horizon_days : float
        The label's horizon (for the time-ordered split that keeps validation labels out of the choice).
    settings : AttributeSelection, optional
        The limits; defaults to ``AttributeSelection()``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(400)],
    ...                       "tier": rng.choice(["gold", "basic"], 400), "rare": [None] * 399 + ["x"]})
    >>> label = (leads["tier"] == "gold") & (rng.random(400) < 0.6)
    >>> cutoffs = pd.date_range("2024-01-01", periods=400, freq="D", tz="UTC")
    >>> snaps = pd.DataFrame({"lead_id": leads["lead_id"], "cutoff": cutoffs, "label": label.astype(int)})
    >>> select_attributes(leads, snaps, horizon_days=1).chosen
    ['tier']
    """
    from leadscore.data.times import epoch_days
    from leadscore.features.history import attribute_names
    from leadscore.model.splits import VALIDATION_FRACTION, time_split

    settings = settings or AttributeSelection()
    names = attribute_names(leads)
    columns = ["name", "coverage", "information_bits", "p_value", "chosen", "reason"]
    if not names:
        return SelectionReport(settings=settings, chosen=[], table=pd.DataFrame(columns=columns))
    position = pd.Index(leads["lead_id"].astype("str")).get_indexer(snapshots["lead_id"].astype("str"))
    rows_per_lead = np.bincount(position, minlength=len(leads)).astype(float)
    n_rows = max(rows_per_lead.sum(), 1.0)
    coverage = np.array([rows_per_lead[leads[n].notna().to_numpy()].sum() / n_rows for n in names])

    y = snapshots["label"].to_numpy(dtype=int)
    earlier = np.arange(len(y))
    if len(y) and 0 < y.sum() < len(y):
        times = epoch_days(pd.to_datetime(snapshots["cutoff"], utc=True))
        split = time_split(times, float(horizon_days), VALIDATION_FRACTION, y=y, random_state=0)
        earlier = split.train
    early_rows = np.bincount(position[earlier], minlength=len(leads)).astype(float)
    early_positives = np.bincount(position[earlier], weights=y[earlier], minlength=len(leads))
    n_leads = int((early_rows > 0).sum())

    # Plain arrays while measuring (a pandas .loc write per field cost more than measuring it).
    bits, p_values = np.full(len(names), np.nan), np.full(len(names), np.nan)
    reason = np.where(coverage >= settings.min_coverage, "", f"coverage below {settings.min_coverage:.0%}").astype(
        object
    )
    eligible = np.flatnonzero(reason == "")
    order = eligible[np.argsort(-coverage[eligible], kind="stable")]
    reason[order[settings.measured :]] = f"not among the {settings.measured} best covered"
    for i in order[: settings.measured]:
        codes, why = _codes(leads[names[i]])
        if why:
            reason[i] = why
            continue
        bits[i], p_values[i] = _information(codes, early_rows, early_positives, n_leads)
        if p_values[i] > settings.max_p_value:
            reason[i] = f"no information on the label (p = {p_values[i]:.2g})"
    table = pd.DataFrame(
        {"name": names, "coverage": coverage, "information_bits": bits, "p_value": p_values, "reason": reason}
    )
    useful = table[table["reason"] == ""].sort_values(
        ["p_value", "information_bits", "name"], ascending=[True, False, True], kind="stable"
    )
    chosen = useful["name"].head(settings.max_attributes).tolist()
    table.loc[useful.index[settings.max_attributes :], "reason"] = (
        f"not among the {settings.max_attributes} with the strongest evidence"
    )
    table["chosen"] = table["name"].isin(chosen)
    table.loc[table["chosen"], "reason"] = "chosen"
    table = table.sort_values(["chosen", "information_bits", "coverage"], ascending=False, ignore_index=True)
    return SelectionReport(settings=settings, chosen=chosen, table=table[columns])
