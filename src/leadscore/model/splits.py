"""Labelled examples and the honest ways of splitting them: by time, with a purge of overlapping labels.

A labelled example is a snapshot (a lead as of a cutoff, labelled "won within H days") or a row of a flat table.
Validation always uses the latest examples: train on the earlier ones, judge on the later ones. A training
snapshot whose label window ``(t, t + H]`` reaches into the validation period is dropped (purged): its label was
decided by what happened during the validation period, and the same lead may sit on both sides. Only data with
no time at all is split at random, and the split then says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

VALIDATION_FRACTION = 0.2

# Where examples come from (CRM snapshots or a flat table), and what gives them their time.
Source = Literal["crm", "table"]
TimeKind = Literal["cutoff", "column", "row order", "none"]


@dataclass(kw_only=True)
class LabelledData:
    """Examples ready for training: features, labels and when each example was taken.

    Attributes
    ----------
    X : DataFrame
        Raw feature columns (a flat table's text, or the point-in-time feature frame).
    y : ndarray of int
        1 when the lead converted (within the horizon), else 0.
    times : ndarray of float or None
        Each example's time in days (a snapshot's cutoff, a time column, or the row position); None when the
        data has no time.
    horizon : float
        The label window in the same unit as ``times`` (90 days for CRM snapshots, 0 for flat tables).
    kinds : dict of str to str
        Each feature's kind: numeric, categorical, boolean or date.
    source : str
        "crm" or "table".
    time_kind : str
        "cutoff", "column", "row order" or "none".
    description : str
        What the data is, for the MLflow run.
    notes : list of str
        Things the user should know (columns left out, a random split...).
    ids : ndarray or None
        The lead of each example, when known.
    choices : dict
        What was chosen from the data before training and how (e.g. ``"attributes"``: the lead attributes
        selected, :mod:`leadscore.model.attribute_selection`), JSON-ready, for the MLflow run.
    """

    X: pd.DataFrame
    y: np.ndarray
    times: np.ndarray | None
    horizon: float
    kinds: dict[str, str]
    source: Source
    time_kind: TimeKind
    description: str
    notes: list[str] = field(default_factory=list)
    ids: np.ndarray | None = None
    choices: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=int)
        if len(self.X) != len(self.y):
            raise ValueError(f"X has {len(self.X)} rows but y has {len(self.y)}")
        if self.times is not None:
            self.times = np.asarray(self.times, dtype=float)
            if len(self.times) != len(self.y):
                raise ValueError(f"times has {len(self.times)} values but y has {len(self.y)}")
            if np.isnan(self.times).any():
                raise ValueError("times has missing values")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def positives(self) -> int:
        return int(self.y.sum())

    @property
    def negatives(self) -> int:
        return int(len(self.y) - self.y.sum())

    def without_features(self, columns: Sequence[str]) -> LabelledData:
        """These examples without the feature ``columns`` (``--drop``: known leaks, identifiers).

        Examples
        --------
        >>> data = LabelledData(X=pd.DataFrame({"a": [1, 2], "b": [3, 4]}), y=[0, 1], times=None, horizon=0.0,
        ...                     kinds={"a": "numeric", "b": "numeric"}, source="table", time_kind="none",
        ...                     description="example")
        >>> list(data.without_features(["b"]).X.columns)
        ['a']
        """
        columns = list(columns)
        absent = [c for c in columns if c not in self.X.columns]
        if absent:
            raise ValueError(f"cannot drop {absent}: not features of this data set")
        if not columns:
            return self
        kinds = {k: v for k, v in self.kinds.items() if k not in columns}
        return replace(self, X=self.X.drop(columns=columns), kinds=kinds)

    def subset(self, index: np.ndarray) -> LabelledData:
        """The examples at positions ``index`` (an integer array)."""
        return LabelledData(
            X=self.X.iloc[index].reset_index(drop=True),
            y=self.y[index],
            times=None if self.times is None else self.times[index],
            horizon=self.horizon,
            kinds=self.kinds,
            source=self.source,
            time_kind=self.time_kind,
            description=self.description,
            notes=self.notes,
            ids=None if self.ids is None else self.ids[index],
            choices=self.choices,
        )


@dataclass(frozen=True, kw_only=True)
class Split:
    """Positions of the training and validation examples, and how they were chosen."""

    train: np.ndarray
    valid: np.ndarray
    time_ordered: bool
    valid_start: float | None  # first validation time (None for a random split)
    purged: int  # training examples dropped because their label window overlaps the validation period

    def describe(self) -> str:
        if not self.time_ordered:
            return f"random split: {len(self.train)} training, {len(self.valid)} validation examples (no time)"
        return (
            f"time-ordered split: {len(self.train)} earlier examples for training, {len(self.valid)} latest for "
            f"validation, {self.purged} purged for label windows overlapping the validation period"
        )


def time_split(
    times: np.ndarray | None,
    horizon: float = 0.0,
    fraction: float = VALIDATION_FRACTION,
    *,
    y: np.ndarray | None = None,
    random_state: int = 0,
) -> Split:
    """Split examples into earlier (training) and latest (validation) by time, purging overlapping labels.

    The validation period starts at the time below which ``1 - fraction`` of the examples lie; every example at
    or after it is validation. A training example at time ``t`` is kept only if ``t + horizon`` is not after
    the validation start, so that no training label is decided inside the validation period.

    With ``times=None`` the data has no time: a random split stratified on ``y`` is returned, marked
    ``time_ordered=False``.

    Raises
    ------
    ValueError
        If all examples share one time, or the purge leaves no training example.

    Examples
    --------
    >>> import numpy as np
    >>> s = time_split(np.array([0., 7, 14, 21, 28, 35, 42, 49, 56, 63]), horizon=14, fraction=0.2)
    >>> s.train.tolist(), s.valid.tolist(), s.purged
    ([0, 1, 2, 3, 4, 5, 6], [8, 9], 1)
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    if times is None:
        if y is None:
            raise ValueError("a random split needs the labels to stratify on")
        from sklearn.model_selection import train_test_split

        index = np.arange(len(y))
        strata = y if min(np.bincount(np.asarray(y, dtype=int), minlength=2)) >= 2 else None
        train, valid = train_test_split(index, test_size=fraction, random_state=random_state, stratify=strata)
        return Split(train=np.sort(train), valid=np.sort(valid), time_ordered=False, valid_start=None, purged=0)
    times = np.asarray(times, dtype=float)
    ordered = np.sort(times)
    start = ordered[min(int(np.floor((1 - fraction) * len(times))), len(times) - 1)]
    if start <= ordered[0]:
        raise ValueError("all examples share the same time: there is no earlier period to train on")
    valid = np.flatnonzero(times >= start)
    before = times < start
    train = np.flatnonzero(before & (times + horizon <= start))
    purged = int(before.sum() - len(train))
    if len(train) == 0:
        raise ValueError(
            f"no training example ends its {horizon:g}-day label window before the validation period starts; "
            "the data covers too short a time for this horizon"
        )
    return Split(train=train, valid=valid, time_ordered=True, valid_start=float(start), purged=purged)
