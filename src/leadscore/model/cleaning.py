"""Cleaning a raw table for a model: :class:`TableCleaner`, the first step of every model pipeline.

:class:`TableCleaner` decides once what each column is (see :mod:`leadscore.model.kinds`), treats placeholders
such as empty strings and "unknown" as missing, and turns the raw text into model-ready columns, so a model logged
to MLflow takes the same raw rows at scoring time as it was trained on. :meth:`TableCleaner.converted_columns` is
its fast path: the same conversion as arrays by name, for the API and the compiled scorer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from leadscore.data.times import epoch_days
from leadscore.model.kinds import (
    BOOLEAN,
    CATEGORICAL,
    DATE,
    FALSE_WORDS,
    KINDS,
    NUMERIC,
    PLACEHOLDERS,
    TRUE_WORDS,
    infer_kind,
    stripped_text,
)

# The constant a categorical column never filled in during training becomes.
EMPTY_CATEGORY = "(never filled in)"
# Up to this many rows, text is converted value by value rather than once per distinct value.
FEW_ROWS = 8


def _number(text: str | None) -> float:
    """``text`` as a float the way ``pd.to_numeric(errors="coerce")`` reads it (NaN when it is not a number)."""
    if text is None or "_" in text:
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


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
    optional_ : list of str
        Kept columns with a missing value at fit time: they may be absent when transforming (all missing then).
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
        missing = {c: self._convert(X[c], kind).isna() for c, kind in self.kinds_.items()}
        # A column with no value at all in the training data carries no information; it is set to a constant
        # (so that models that cannot take an all-missing column still fit) and stays a constant when scoring.
        self.empty_ = [c for c, gaps in missing.items() if gaps.all()]
        # A column the model learnt with missing values may be left out when scoring: read as missing throughout.
        self.optional_ = [c for c, gaps in missing.items() if gaps.any()]
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
        absent = [c for c in self.kinds_ if c not in present]
        optional = set(getattr(self, "optional_", ()))  # models saved before it was kept: every column required
        required = [c for c in absent if c not in optional]
        if required:
            raise ValueError(f"column(s) {required} are missing from the input (the model was trained on them)")
        n = n_rows(X)
        empty = set(getattr(self, "empty_", ()))
        if frame is not None:
            numeric_dtype = {c: pd.api.types.is_numeric_dtype(d) for c, d in zip(names, frame.dtypes, strict=True)}
        else:
            numeric_dtype = {c: np.asarray(X[c]).dtype.kind in "biuf" for c in self.kinds_ if c in present}
        for column in absent:
            numeric_dtype[column] = False
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
            elif column not in present:
                values = np.full(n, np.nan, dtype=object if kind == CATEGORICAL else float)
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
            return pd.to_numeric(stripped_text(values, self.placeholders), errors="coerce").astype("float64")
        if kind == BOOLEAN:
            if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                return values.astype("float64")
            lowered = stripped_text(values, self.placeholders).str.lower()
            flags = pd.Series(np.nan, index=values.index, dtype="float64")
            flags[lowered.isin(TRUE_WORDS).fillna(False).to_numpy(bool)] = 1.0
            flags[lowered.isin(FALSE_WORDS).fillna(False).to_numpy(bool)] = 0.0
            return flags
        if kind == DATE:
            if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
                stamps = pd.to_datetime(values, utc=True)
            else:
                stamps = pd.to_datetime(
                    stripped_text(values, self.placeholders), errors="coerce", format="mixed", utc=True
                )
            return pd.Series(epoch_days(stamps), index=values.index, dtype="float64")
        # Categories as plain Python strings with NaN for missing: what every scikit-learn encoder accepts.
        text = stripped_text(values, self.placeholders)
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
