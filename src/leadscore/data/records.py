"""Tables and values as plain Python and as JSON: one implementation for every edge that hands data on.

The store writes rows through SQLAlchemy, the API answers in JSON and the CLI prints JSON; all three need the
same conversions, which live here, below all of them:

- :func:`column_values` and :func:`records`: a column, or a table, as plain Python values (missing values as
  None, numpy numbers as Python numbers, timestamps as aware ``datetime`` to the microsecond);
- :func:`to_json`: any of those, and numpy arrays and scalars, as JSON bytes written by orjson (non-finite
  numbers as null, timestamps in UTC with a ``Z``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd

#: orjson writes numpy arrays and scalars itself, keys that are not text as text, and NaN and infinities as null.
# No OPT_NON_STR_KEYS: every key we write is a string, and the option costs a third more per response.
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_UTC_Z

#: Up to this many values, a column of objects is checked for missing values in Python rather than by pandas.
FEW = 32


def column_values(values: pd.Series | np.ndarray | Sequence[Any]) -> list[Any]:
    """One column as a list of plain Python values, missing ones (None, NaN, NaT) as None.

    Numbers become Python numbers and a column of timestamps ``datetime`` objects (floored to the microsecond,
    which is all a ``datetime`` holds); anything else (text, lists) is left as it is.

    Examples
    --------
    >>> column_values(pd.Series([1.5, None]))
    [1.5, None]
    >>> column_values(pd.Series(pd.to_datetime(["2024-01-01", None], utc=True)))
    [datetime.datetime(2024, 1, 1, 0, 0, tzinfo=datetime.timezone.utc), None]
    >>> column_values([["a reason"], []])
    [['a reason'], []]
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        values = pd.Series(values)
    if isinstance(values, pd.Series):
        missing = values.isna().to_numpy()
        if values.dtype.kind == "M":
            plain = values.dt.floor("us").array.to_pydatetime().tolist()
        else:
            plain = values.to_numpy(dtype=object).tolist()  # numpy numbers become Python numbers
    elif isinstance(values, np.ndarray) and values.dtype.kind != "O":
        plain = values.tolist()
        if values.dtype.kind != "f":
            return plain
        missing = np.isnan(values)
    else:
        plain = values.tolist() if isinstance(values, np.ndarray) else list(values)
        if len(plain) <= FEW:  # one by one: for the few rows of a typical request, several times faster than pd.isna
            if not any(v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v) for v in plain):
                return plain
            return [None if v is None or v is pd.NaT or v is pd.NA or v != v else v for v in plain]
        missing = pd.isna(np.fromiter(plain, dtype=object, count=len(plain)))  # one column, even of lists
    if not missing.any():
        return plain
    return [None if gone else value for value, gone in zip(plain, missing.tolist(), strict=True)]


def records(table: pd.DataFrame | Mapping[str, Any], columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rows of ``table`` (a frame, or columns by name) as dicts of plain Python values (see
    :func:`column_values`), with ``columns`` (default: all of them) in order.

    Column by column rather than ``DataFrame.to_dict("records")``: a frame's own conversion costs more than
    scoring a small batch, and leaves numpy numbers and NaN in the rows.

    Examples
    --------
    >>> records(pd.DataFrame({"lead_id": ["a", "b"], "amount": [120.0, float("nan")]}))
    [{'lead_id': 'a', 'amount': 120.0}, {'lead_id': 'b', 'amount': None}]
    """
    names = list(table if columns is None else columns)
    values = [column_values(table[name]) for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _more_types(value: Any) -> Any:
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.ndarray):  # of objects (orjson writes numeric arrays itself)
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "model_dump"):  # a pydantic model
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> bytes:
    """``value`` as JSON: non-finite numbers as null, numpy arrays and scalars as numbers, timestamps in UTC
    with a ``Z``, pydantic models as their JSON form.

    Examples
    --------
    >>> to_json({"auc": float("nan"), "lift": np.array([1.5, np.inf]), "n": np.int64(3)})
    b'{"auc":null,"lift":[1.5,null],"n":3}'
    """
    return orjson.dumps(value, default=_more_types, option=JSON_OPTIONS)
