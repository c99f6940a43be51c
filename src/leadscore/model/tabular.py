"""Flat lead tables: the one-row-per-lead exports with a target column that many CRMs produce.

A flat table arrives as text. :class:`TableCleaner` decides once what each column is (numeric, boolean, date,
categorical, or something to drop such as an identifier), treats placeholders such as empty strings and
"unknown" as missing, and turns the raw text into model-ready columns. It is the first step of every model
pipeline, so a model logged to MLflow takes the same raw rows at scoring time as it was trained on.

:func:`load_flat_table` reads a file, finds the target and the time order, and returns the :class:`LabelledData`
that training takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from leadscore.model.splits import LabelledData

NUMERIC = "numeric"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"
DATE = "date"
KINDS: tuple[str, ...] = (NUMERIC, CATEGORICAL, BOOLEAN, DATE)

# Text that means "no value" in real exports (compared lower-cased and stripped).
PLACEHOLDERS: tuple[str, ...] = ("", "unknown", "n/a", "na", "nan", "null", "?", "-", "#n/a", "not available")
TRUE_WORDS = frozenset({"yes", "y", "true", "t", "1", "si", "sí", "won", "converted"})
FALSE_WORDS = frozenset({"no", "n", "false", "f", "0", "lost", "not converted"})
# The constant a categorical column never filled in during training becomes.
EMPTY_CATEGORY = "(never filled in)"
# Up to this many rows, text is converted value by value rather than once per distinct value.
FEW_ROWS = 8
# A column is numeric (or a date) when at least this share of its filled values parse as such.
PARSE_SHARE = 0.98
# A text column with more distinct values than this share of its rows (and more than 100) is an identifier.
ID_SHARE = 0.5


def _text(values: pd.Series, placeholders: Sequence[str]) -> pd.Series:
    """Stripped text with placeholders (case-insensitive) and blanks as missing."""
    text = values.astype("string").str.strip()
    return text.mask(text.str.lower().isin(list(placeholders)))


def _number(text: str | None) -> float:
    """``text`` as a float the way ``pd.to_numeric(errors="coerce")`` reads it (NaN when it is not a number)."""
    if text is None or "_" in text:
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.dropna()
    if sample.empty:
        return False
    sample = sample.sample(min(len(sample), 1000), random_state=0) if len(sample) > 1000 else sample
    # Month or weekday names ("may", "mon") parse as dates in pandas: require digits and a date separator.
    shaped = sample.str.contains(r"\d{1,4}[-/.]\d{1,2}", regex=True)
    if shaped.mean() < PARSE_SHARE:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)
    return bool(parsed.notna().mean() >= PARSE_SHARE)


def infer_kind(values: pd.Series, placeholders: Sequence[str] = PLACEHOLDERS) -> tuple[str | None, str]:
    """The kind of one raw column, or None and the reason it cannot be a feature.

    Examples
    --------
    >>> import pandas as pd
    >>> infer_kind(pd.Series(["1", "2.5", "", "unknown"]))
    ('numeric', '')
    >>> infer_kind(pd.Series(["yes", "no", "no"]))
    ('boolean', '')
    >>> infer_kind(pd.Series(["a", "a"]))
    (None, 'a single value')
    >>> infer_kind(pd.Series(["price", ""]))
    ('categorical', '')
    """
    if pd.api.types.is_bool_dtype(values):
        return BOOLEAN, ""
    if pd.api.types.is_numeric_dtype(values):
        kind = NUMERIC
        filled = values.dropna()
        distinct = filled.unique()
    elif isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        kind = DATE
        filled = values.dropna()
        distinct = filled.unique()
    else:
        text = _text(values, placeholders)
        filled = text.dropna()
        distinct = filled.unique()
        numbers = pd.to_numeric(filled, errors="coerce")
        lowered = {str(v).lower() for v in distinct}
        if len(distinct) == 2 and lowered <= (TRUE_WORDS | FALSE_WORDS) and lowered & TRUE_WORDS:
            return BOOLEAN, ""
        if len(filled) and numbers.notna().mean() >= PARSE_SHARE:
            kind = NUMERIC
        elif _looks_like_dates(filled):
            kind = DATE
        else:
            kind = CATEGORICAL
            if len(distinct) > 100 and len(distinct) > ID_SHARE * len(filled):
                return None, f"an identifier or free text ({len(distinct)} distinct values)"
    if len(distinct) == 0:
        return None, "always missing"
    if len(distinct) == 1:
        # One value and blanks still says something (filled in or not); one value everywhere says nothing.
        if len(filled) == len(values):
            return None, "a single value"
    return kind, ""


def n_rows(X: pd.DataFrame | Mapping[str, np.ndarray]) -> int:
    """Rows of a frame, or of columns by name as arrays of one length."""
    return len(X) if isinstance(X, pd.DataFrame) else len(next(iter(X.values()), ()))


class TableCleaner(TransformerMixin, BaseEstimator):
    """Turn raw columns into model-ready ones: floats for numbers, booleans and dates; text for categories.

    Parameters
    ----------
    kinds : mapping of str to str, default=None
        Column -> "numeric", "categorical", "boolean" or "date". Columns named here keep that kind; the others
        are inferred by :func:`infer_kind` at fit time, and columns that cannot be features (identifiers,
        constants, always missing) are dropped. Columns not named and not seen at fit time are ignored.
    placeholders : sequence of str, default=PLACEHOLDERS
        Text values read as missing (lower-cased, stripped).

    Attributes
    ----------
    kinds_ : dict of str to str
        The kind of every kept column, in output order.
    dropped_ : dict of str to str
        Columns left out and why.
    empty_ : list of str
        Kept columns without any value at fit time: they become a constant (0, or a fixed category).
    feature_names_in_ : ndarray of str
        The columns seen at fit time.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"age": ["30", "41", "unknown"], "housing": ["yes", "no", "no"]})
    >>> out = TableCleaner().fit_transform(raw)
    >>> out["age"].tolist(), out["housing"].tolist()
    ([30.0, 41.0, nan], [1.0, 0.0, 0.0])
    """

    def __init__(self, kinds: Mapping[str, str] | None = None, placeholders: Sequence[str] = PLACEHOLDERS):
        self.kinds = kinds
        self.placeholders = placeholders

    def fit(self, X: pd.DataFrame, y=None) -> TableCleaner:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"TableCleaner takes a pandas DataFrame, got {type(X).__name__}")
        given = dict(self.kinds or {})
        for column, kind in given.items():
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r} of column {column!r} is not one of {list(KINDS)}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.kinds_: dict[str, str] = {}
        self.dropped_: dict[str, str] = {}
        for column in X.columns:
            if column in given:
                self.kinds_[column] = given[column]
                continue
            kind, reason = infer_kind(X[column], self.placeholders)
            if kind is None:
                self.dropped_[column] = reason
            else:
                self.kinds_[column] = kind
        missing = [c for c in given if c not in X.columns]
        if missing:
            raise ValueError(f"column(s) {missing} given a kind but not in the table")
        # A column with no value at all in the training data carries no information; it is set to a constant
        # (so that models that cannot take an all-missing column still fit) and stays a constant when scoring.
        self.empty_ = [c for c, kind in self.kinds_.items() if self._convert(X[c], kind).isna().all()]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        columns = self.converted_columns(X)
        floats = {c: v for c, v in columns.items() if self.kinds_[c] != CATEGORICAL}
        out = pd.DataFrame(floats, index=X.index, dtype=float)
        for column, values in columns.items():
            if self.kinds_[column] == CATEGORICAL:
                # Categories stay object (pandas would infer its string dtype from object arrays of text).
                out[column] = pd.Series(values, index=X.index, dtype=object)
        return out[list(self.kinds_)]

    def converted_columns(self, X: pd.DataFrame | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The kept columns converted, as arrays by name in output order: floats, or object text for categories.

        What :meth:`transform` returns, without building a frame (the fast scorer reads these arrays directly).
        ``X`` is a frame, or columns by name as arrays of one length (what the API builds from a request).
        """
        check_is_fitted(self, "kinds_")
        frame = X if isinstance(X, pd.DataFrame) else None
        names = list(X.columns) if frame is not None else list(X)
        present = set(names)
        missing = [c for c in self.kinds_ if c not in present]
        if missing:
            raise ValueError(f"column(s) {missing} are missing from the input (the model was trained on them)")
        n = n_rows(X)
        empty = set(getattr(self, "empty_", ()))
        if frame is not None:
            numeric_dtype = {c: pd.api.types.is_numeric_dtype(d) for c, d in zip(names, frame.dtypes, strict=True)}
        else:
            numeric_dtype = {c: np.asarray(X[c]).dtype.kind in "biuf" for c in self.kinds_}
        # Columns that are already numbers become floats in one block (the common case for CRM features).
        direct = [c for c, kind in self.kinds_.items() if kind != CATEGORICAL and c not in empty and numeric_dtype[c]]
        converted: dict[str, np.ndarray] = {}
        if direct and frame is not None:
            block = frame[direct].to_numpy(dtype=float, na_value=np.nan)
            converted = {c: block[:, i] for i, c in enumerate(direct)}
        elif direct:
            converted = {c: np.asarray(X[c], dtype=float) for c in direct}
        for column, kind in self.kinds_.items():
            if column in converted:
                continue
            if column in empty:
                constant = EMPTY_CATEGORY if kind == CATEGORICAL else 0.0
                values = np.full(n, constant, dtype=object if kind == CATEGORICAL else float)
            elif kind == DATE:
                values = self._convert(pd.Series(X[column]), kind).to_numpy()
            else:
                values = np.asarray(X[column], dtype=object)
                # Once per distinct value only when the values are text: factorising would merge 1, 1.0 and True.
                text = n > FEW_ROWS and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")
                values = self._convert_distinct(values, kind) if text else self._convert_small(values, kind)
            converted[column] = values
        return {column: converted[column] for column in self.kinds_}

    def _convert_distinct(self, values: np.ndarray, kind: str) -> np.ndarray:
        """The same conversion as :meth:`_convert`, done once per distinct value (a column of text usually holds
        few): cheaper than pandas' string methods over every row, for one row as for a million."""
        codes, distinct = pd.factorize(values)
        converted = self._convert_small(np.asarray(distinct, dtype=object), kind)
        out = np.empty(len(values), dtype=object if kind == CATEGORICAL else float)
        out[:] = converted[codes] if len(converted) else np.nan
        out[codes < 0] = np.nan
        return out

    def _convert_small(self, values: np.ndarray, kind: str) -> np.ndarray:
        """The same conversion as :meth:`_convert`, value by value."""
        placeholders = frozenset(self.placeholders)
        texts = []
        for value in values:
            if value is None or value is pd.NA or (isinstance(value, float) and value != value):
                texts.append(None)
                continue
            text = str(value).strip()
            texts.append(None if text.lower() in placeholders else text)
        if kind == NUMERIC:
            return np.array([_number(t) for t in texts], dtype=float)
        if kind == BOOLEAN:
            return np.array(
                [
                    np.nan
                    if t is None
                    else 1.0
                    if t.lower() in TRUE_WORDS
                    else 0.0
                    if t.lower() in FALSE_WORDS
                    else np.nan
                    for t in texts
                ],
                dtype=float,
            )
        return np.array([np.nan if t is None else t for t in texts], dtype=object)

    def _convert(self, values: pd.Series, kind: str) -> pd.Series:
        if kind == NUMERIC:
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                return values.astype("float64")
            return pd.to_numeric(_text(values, self.placeholders), errors="coerce").astype("float64")
        if kind == BOOLEAN:
            if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                return values.astype("float64")
            lowered = _text(values, self.placeholders).str.lower()
            flags = pd.Series(np.nan, index=values.index, dtype="float64")
            flags[lowered.isin(TRUE_WORDS).fillna(False).to_numpy(bool)] = 1.0
            flags[lowered.isin(FALSE_WORDS).fillna(False).to_numpy(bool)] = 0.0
            return flags
        if kind == DATE:
            if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
                stamps = pd.to_datetime(values, utc=True)
            else:
                stamps = pd.to_datetime(_text(values, self.placeholders), errors="coerce", format="mixed", utc=True)
            return pd.Series(epoch_days(stamps), index=values.index, dtype="float64")
        # Categories as plain Python strings with NaN for missing: what every scikit-learn encoder accepts.
        text = _text(values, self.placeholders)
        return pd.Series(text.to_numpy(dtype=object, na_value=np.nan), index=values.index, dtype=object)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "kinds_")
        return np.asarray(list(self.kinds_), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        return tags


def epoch_days(stamps) -> np.ndarray:
    """UTC timestamps as days (with fractions) since 1970-01-01, as floats (NaT: NaN): the unit of a date column
    once cleaned and of :attr:`LabelledData.times <leadscore.model.splits.LabelledData>`.

    Examples
    --------
    >>> epoch_days(pd.to_datetime(["1970-01-02 12:00", None], utc=True)).tolist()
    [1.5, nan]
    """
    delta = pd.to_datetime(stamps, utc=True) - pd.Timestamp("1970-01-01", tz="UTC")
    return np.asarray(delta / pd.Timedelta(days=1), dtype=float)


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
    text = _text(values, ("",) + tuple(p for p in PLACEHOLDERS if p))
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
        stamps = pd.to_datetime(_text(raw[time_column], PLACEHOLDERS), errors="coerce", format="mixed", utc=True)
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
