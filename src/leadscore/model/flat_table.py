"""Flat lead tables: the one-row-per-lead exports with a target column that many CRMs produce.

:func:`load_flat_table` reads a file, finds the target (:func:`target_labels`) and the time order, infers each
column's kind with :class:`~leadscore.model.cleaning.TableCleaner`, and returns the :class:`LabelledData` that
training takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.times import epoch_days
from leadscore.model.cleaning import TableCleaner
from leadscore.model.kinds import PLACEHOLDERS, TRUE_WORDS, stripped_text
from leadscore.model.splits import LabelledData


def _read(path: Path) -> pd.DataFrame:
    from leadscore.data.io import read_table

    return read_table(path)


def target_labels(values: pd.Series, positive: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The 0/1 labels of a target column, which rows have one, and the value read as positive.

    Without ``positive`` the column must have two values and one of them must read as yes (yes, true, 1,
    won, converted, ...).

    Examples
    --------
    >>> import pandas as pd
    >>> y, has, pos = target_labels(pd.Series(["no", "yes", ""]))
    >>> y.tolist(), has.tolist(), pos
    ([0, 1, 0], [True, True, False], 'yes')
    """
    text = stripped_text(values, ("",) + tuple(p for p in PLACEHOLDERS if p))
    has = text.notna().to_numpy()
    distinct = sorted({str(v) for v in text.dropna().unique()})
    if positive is None:
        if len(distinct) != 2:
            raise ValueError(
                f"the target must have exactly two values, found {len(distinct)}: {distinct[:10]} "
                "(give --positive VALUE to say which one means converted)"
            )
        yes = [v for v in distinct if v.lower() in TRUE_WORDS]
        if len(yes) != 1:
            raise ValueError(f"cannot tell which target value means converted among {distinct}; give --positive")
        positive = yes[0]
    elif positive not in distinct:
        raise ValueError(f"positive value {positive!r} does not occur in the target; its values are {distinct[:10]}")
    labels = (text == positive).fillna(False).to_numpy(dtype=int)
    return labels, has, positive


def load_flat_table(
    path: str | Path,
    target: str,
    *,
    time_column: str | None = None,
    row_order_is_time: bool = False,
    drop: Sequence[str] = (),
    positive: str | None = None,
    frame: pd.DataFrame | None = None,
) -> LabelledData:
    """Read a flat lead table and return its labelled rows, their time order and the inferred column kinds.

    Parameters
    ----------
    path : str or Path
        A CSV (``,`` or ``;`` separated) or Parquet file.
    target : str
        The column saying whether the lead converted.
    time_column : str, optional
        A date column giving each row's time; validation then uses the latest rows by it. It is not a feature.
    row_order_is_time : bool, default=False
        The rows are in time order (oldest first) without a time column: row position is used as time.
    drop : sequence of str
        Columns to leave out (known leaks, identifiers, free text).
    positive : str, optional
        The target value that means converted, when it is not an obvious yes/true/1.
    frame : DataFrame, optional
        The raw table already in memory (``path`` then only names it).

    Without a time column and without ``row_order_is_time`` the rows have no time, and validation falls back to
    a random split, which the result says.

    Examples
    --------
    >>> data = load_flat_table("bank.csv", "y", drop=["duration"], row_order_is_time=True)  # doctest: +SKIP
    >>> data.time_kind  # doctest: +SKIP
    'row order'
    """
    raw = frame if frame is not None else _read(Path(path))
    for column in [target, *drop, *([time_column] if time_column else [])]:
        if column not in raw.columns:
            raise ValueError(f"column {column!r} is not in {path}; its columns are {list(raw.columns)}")
    if time_column and row_order_is_time:
        raise ValueError("give either a time column or row_order_is_time, not both")
    labels, has_label, positive = target_labels(raw[target], positive)
    notes = []
    if not has_label.all():
        notes.append(f"{int((~has_label).sum())} rows without a target value were left out")
    raw = raw.loc[has_label].reset_index(drop=True)
    labels = labels[has_label]
    if time_column:
        stamps = pd.to_datetime(
            stripped_text(raw[time_column], PLACEHOLDERS), errors="coerce", format="mixed", utc=True
        )
        if stamps.isna().any():
            raise ValueError(
                f"time column {time_column!r} has {int(stamps.isna().sum())} missing or unparseable values "
                f"(rows {(np.flatnonzero(stamps.isna().to_numpy())[:5] + 1).tolist()} ...)"
            )
        times = epoch_days(stamps)
        time_kind = "column"
    elif row_order_is_time:
        times = np.arange(len(raw), dtype=float)
        time_kind = "row order"
    else:
        times = None
        time_kind = "none"
        notes.append("the table has no time: validation is a random split, which overstates future accuracy")
    features = raw.drop(columns=[target, *drop, *([time_column] if time_column else [])])
    cleaner = TableCleaner().fit(features)
    for column, reason in cleaner.dropped_.items():
        notes.append(f"column {column!r} left out: {reason}")
    return LabelledData(
        X=features[list(cleaner.kinds_)],
        y=labels,
        times=times,
        horizon=0.0,
        kinds=dict(cleaner.kinds_),
        source="table",
        time_kind=time_kind,
        description=f"flat table {Path(path).name}, target {target!r} = {positive!r}",
        notes=notes,
        ids=None,
    )
