"""What kind of values a raw column holds: numeric, categorical, boolean or date, or none (an identifier, a
constant, always missing), and the placeholder text that means "no value" in real exports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import pandas as pd

# A column's kind: plain strings (not an enum), since they are stored in every fitted cleaner that skops saves.
Kind = Literal["numeric", "categorical", "boolean", "date"]
NUMERIC: Kind = "numeric"
CATEGORICAL: Kind = "categorical"
BOOLEAN: Kind = "boolean"
DATE: Kind = "date"
KINDS: tuple[Kind, ...] = get_args(Kind)

# Text that means "no value" in real exports (compared lower-cased and stripped).
PLACEHOLDERS: tuple[str, ...] = ("", "unknown", "n/a", "na", "nan", "null", "?", "-", "#n/a", "not available")
TRUE_WORDS = frozenset({"yes", "y", "true", "t", "1", "si", "sí", "won", "converted"})
FALSE_WORDS = frozenset({"no", "n", "false", "f", "0", "lost", "not converted"})
# A column is numeric (or a date) when at least this share of its filled values parse as such.
PARSE_SHARE = 0.98
# A text column with more distinct values than this share of its rows (and more than 100) is an identifier.
ID_SHARE = 0.5


def stripped_text(values: pd.Series, placeholders: Sequence[str]) -> pd.Series:
    """Stripped text with placeholders (case-insensitive) and blanks as missing."""
    text = values.astype("string").str.strip()
    return text.mask(text.str.lower().isin(list(placeholders)))


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


def infer_kind(values: pd.Series, placeholders: Sequence[str] = PLACEHOLDERS) -> tuple[Kind | None, str]:
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
        text = stripped_text(values, placeholders)
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
