"""Bulk reads and writes on each driver's fast path.

Batches of leads and events are written to a temporary staging table (``COPY`` on PostgreSQL, ``executemany``
on SQLite) and moved into place with one ``INSERT ... SELECT ... ON CONFLICT`` statement; comparisons with stored
rows (is this event id stored with other content? did this lead change?) are done by the database on the staged
rows. Reads fetch plain tuples from the driver and convert whole columns at once. This avoids per-value work in
Python, which is what makes an ORM slow on millions of rows (and psycopg's parsing of huge multi-row ``VALUES``
statements slower still).

Timestamps travel as UTC: on SQLite as text in SQLAlchemy's own format (``2024-01-02 10:00:00.000000``), so rows
written here and through the ORM compare equal; on PostgreSQL as ``timestamptz``, read back as integer
microseconds since the epoch. Those of stored leads and events are rounded *up* to the microsecond (see
:func:`column_values`), query bounds such as a cutoff down.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection


class Bulk:
    """Dialect-specific bulk operations on a connection inside a transaction."""

    #: Null-safe "differs" operator.
    distinct = "IS DISTINCT FROM"
    #: What an ``INSERT ... SELECT`` needs before ``ON CONFLICT`` (SQLite: a WHERE clause).
    where_true = ""
    placeholder = "%s"
    #: The table function over a lead's JSON attributes that yields its (key, value) pairs.
    json_each = "jsonb_each"

    def __init__(self, conn: Connection):
        self.conn = conn

    @staticmethod
    def for_connection(conn: Connection) -> Bulk:
        name = conn.dialect.name
        if name == "sqlite":
            return SqliteBulk(conn)
        if name == "postgresql":
            return PostgresBulk(conn)
        raise NotImplementedError(f"no bulk operations for dialect {name!r}")

    # ---- statements

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement through the driver; return its row count."""
        cursor = self.conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return cursor.rowcount
        finally:
            cursor.close()

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a query through the driver; return its rows as plain tuples."""
        cursor = self.conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return cursor.fetchall()
        finally:
            cursor.close()

    def placeholders(self, n: int) -> str:
        return ", ".join([self.placeholder] * n)

    # ---- values

    def write_timestamps(self, values: pd.Series) -> list[Any]:
        """A timestamp column as the driver should receive it (None for missing)."""
        raise NotImplementedError

    def write_timestamp(self, value: datetime) -> Any:
        return self.write_timestamps(pd.Series([pd.Timestamp(value)]))[0]

    def read_timestamp_sql(self, column: str) -> str:
        """SQL that reads a timestamp column in the form :meth:`timestamps_from` expects."""
        return column

    def timestamps_from(self, values: pd.Series) -> pd.Series:
        """Timestamps as read back, as ``datetime64[ns, UTC]``."""
        raise NotImplementedError

    def json_from(self, values: pd.Series) -> list[dict[str, Any]]:
        """A JSON column as read back, as Python objects."""
        return [{} if v is None else v for v in values]

    # ---- staging

    def stage(self, name: str, like: str, columns: Sequence[str], rows: list[tuple]) -> None:
        """Fill a temporary table ``name``, typed like ``columns`` of table ``like``, with ``rows``."""
        raise NotImplementedError


class SqliteBulk(Bulk):
    distinct = "IS NOT"
    json_each = "json_each"
    where_true = "WHERE true"
    placeholder = "?"

    def write_timestamps(self, values: pd.Series) -> list[Any]:
        # numpy formats ~50x faster than strftime; SQLAlchemy's format has a space where ISO 8601 has a "T".
        micros = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        text = np.char.replace(np.datetime_as_string(micros, unit="us"), "T", " ")
        missing = values.isna().to_numpy()
        return [None if m else str(v) for v, m in zip(text, missing, strict=True)]

    def timestamps_from(self, values: pd.Series) -> pd.Series:
        parsed = pd.to_datetime(values, format="ISO8601", utc=True)
        return parsed.astype("datetime64[ns, UTC]")

    def json_from(self, values: pd.Series) -> list[dict[str, Any]]:
        return [{} if v is None else json.loads(v) for v in values]

    def stage(self, name: str, like: str, columns: Sequence[str], rows: list[tuple]) -> None:
        cols = ", ".join(columns)
        cursor = self.conn.connection.cursor()
        try:
            # A temporary table lives as long as the connection; reused (and emptied) by later transactions.
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT {cols} FROM {like} WHERE 0")
            cursor.execute(f"DELETE FROM {name}")
            cursor.executemany(f"INSERT INTO {name} ({cols}) VALUES ({self.placeholders(len(columns))})", rows)
        finally:
            cursor.close()


class PostgresBulk(Bulk):
    def write_timestamps(self, values: pd.Series) -> list[Any]:
        objects = values.dt.floor("us").dt.to_pydatetime()
        return [None if pd.isna(v) else v for v in objects]

    def read_timestamp_sql(self, column: str) -> str:
        return f"(extract(epoch from {column}) * 1000000)::bigint"

    def timestamps_from(self, values: pd.Series) -> pd.Series:
        micros = pd.array(values.to_numpy(dtype=object), dtype="Int64")
        return pd.Series(pd.to_datetime(micros, unit="us", utc=True), index=values.index).astype("datetime64[ns, UTC]")

    def stage(self, name: str, like: str, columns: Sequence[str], rows: list[tuple]) -> None:
        cols = ", ".join(columns)
        cursor = self.conn.connection.cursor()
        try:
            cursor.execute(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {cols} FROM {like} WITH NO DATA")
            with cursor.copy(f"COPY {name} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()


def column_values(bulk: Bulk, series: pd.Series) -> list[Any]:
    """A frame column as driver values: timestamps per dialect, numbers as floats, text as str, None for missing."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        # Rounded up to the microsecond the store keeps: a stored event or lead is never known earlier than it
        # happened, so "at <= t" holds in the store exactly as in the data for every cutoff t to the microsecond
        # (rounding down would let an event 1 ns after t count at t: a look-ahead).
        return bulk.write_timestamps(series.dt.ceil("us"))
    missing = series.isna().to_numpy()
    values = series.to_numpy(dtype=object)
    if pd.api.types.is_float_dtype(series.dtype):
        return [None if m else float(v) for v, m in zip(values, missing, strict=True)]
    return [None if m else v for v, m in zip(values, missing, strict=True)]


def rows_of(bulk: Bulk, frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple]:
    """The rows of ``frame[columns]`` as driver-ready tuples."""
    return list(zip(*(column_values(bulk, frame[c]) for c in columns), strict=True))


def attributes_json(frame: pd.DataFrame, extras: Sequence[str]) -> list[str]:
    """Each row's extra columns as a JSON object (missing values left out; keys sorted, so equal rows give equal
    text).

    Work is per filled cell, not per cell: a table with hundreds of sparse custom fields costs what its filled
    values cost.

    Examples
    --------
    >>> frame = pd.DataFrame({"size": [40, np.nan], "country": ["ES", "FR"]})
    >>> attributes_json(frame, ["size", "country"])
    ['{"country": "ES", "size": 40.0}', '{"country": "FR"}']
    """
    rows: list[dict[str, Any]] = [{} for _ in range(len(frame))]
    for name in extras:
        column = frame[name]
        present = np.flatnonzero(column.notna().to_numpy())
        key = str(name)
        for row, value in zip(present.tolist(), column.iloc[present].tolist(), strict=True):
            rows[row][key] = value if type(value) in (str, float, int, bool) else native(value)
    return [attributes_text(row) for row in rows]


def attributes_text(attributes: dict[str, Any]) -> str:
    """One lead's attributes as stored: JSON with sorted keys, missing values left out.

    Examples
    --------
    >>> attributes_text({"stage": "proposal", "size": 40, "gone": None})
    '{"size": 40, "stage": "proposal"}'
    """
    return json.dumps({k: v for k, v in attributes.items() if v is not None}, sort_keys=True)


def native(value: Any) -> Any:
    """A JSON-friendly Python value: None for missing, Python scalars for numpy ones, ISO text for timestamps.

    Examples
    --------
    >>> native(np.float64("nan")), native(np.int64(3)), native(pd.Timestamp("2024-01-01", tz="UTC"))
    (None, 3, '2024-01-01T00:00:00+00:00')
    """
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
