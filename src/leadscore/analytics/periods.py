"""Calendar periods: half-open, timezone-aware UTC ranges of a day, a week (starting Monday) or a month.

Every figure in :mod:`leadscore.analytics` is counted over half-open ranges ``[start, end)``: an event at exactly
midnight belongs to the day (week, month) that *starts* at that midnight, never to the one that ends there, so a
boundary neither counts an event twice nor drops it. Timestamps are UTC; a naive timestamp given by a caller is
read as UTC.

The binning is done on int64 nanoseconds with numpy, so flooring five million timestamps takes milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.times import DAY_NS

PERIODS: tuple[str, ...] = ("day", "week", "month")
#: Most periods one table may be split into (more than a year of days): every period is a group of its own, so a
#: century of days would keep a server busy for minutes and answer with a table nobody reads.
MAX_PERIODS = 400
_NAT = np.iinfo(np.int64).min


def check_period(period: str, allowed: tuple[str, ...] = PERIODS) -> str:
    """Return ``period`` if it is one of ``allowed``, else raise a ValueError naming it.

    Examples
    --------
    >>> check_period("week")
    'week'
    """
    if period not in allowed:
        raise ValueError(f"unknown period {period!r}; choose one of {list(allowed)}")
    return period


def utc(value, name: str = "timestamp") -> pd.Timestamp:
    """A timezone-aware UTC timestamp from a string, date, datetime or Timestamp (naive values are UTC).

    Raises a ValueError naming ``name`` when the value cannot be read.

    Examples
    --------
    >>> utc("2024-03-01")
    Timestamp('2024-03-01 00:00:00+0000', tz='UTC')
    >>> utc("2024-03-01T01:00:00+01:00")
    Timestamp('2024-03-01 00:00:00+0000', tz='UTC')
    """
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} {value!r} is not a readable timestamp") from err
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"{name} is missing")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.as_unit("ns")


def check_range(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Validate a half-open range ``[start, end)``: both readable, and ``end`` after ``start``.

    Examples
    --------
    >>> check_range("2024-01-01", "2024-02-01")[1]
    Timestamp('2024-02-01 00:00:00+0000', tz='UTC')
    >>> check_range("2024-02-01", "2024-01-01")
    Traceback (most recent call last):
    ...
    ValueError: the range ends before it starts: end 2024-01-01 00:00:00+00:00 < start 2024-02-01 00:00:00+00:00
    """
    start_ts, end_ts = utc(start, "start"), utc(end, "end")
    if end_ts < start_ts:
        raise ValueError(f"the range ends before it starts: end {end_ts} < start {start_ts}")
    if end_ts == start_ts:
        raise ValueError(f"the range is empty: start and end are both {start_ts} (end is excluded)")
    return start_ts, end_ts


def as_ns(values) -> np.ndarray:
    """Nanoseconds since the epoch (int64) of UTC timestamps; NaT becomes the int64 minimum."""
    if isinstance(values, pd.Series | pd.Index):
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC") if isinstance(values, pd.Series) else values.tz_convert("UTC")
            return np.asarray(values.array.as_unit("ns").asi8)
        values = values.to_numpy()
    return np.asarray(values, dtype="datetime64[ns]").view("int64")


def floor_ns(ns: np.ndarray, period: str) -> np.ndarray:
    """Start of the period holding each nanosecond timestamp (int64 in, int64 out; NaT stays NaT)."""
    check_period(period)
    ns = np.asarray(ns, dtype="int64")
    nat = ns == _NAT
    if period == "day":
        out = ns - ns % DAY_NS
    elif period == "week":
        days = ns // DAY_NS
        # 1970-01-01 was a Thursday: (days + 3) % 7 is the number of days since the last Monday.
        out = (days - (days + 3) % 7) * DAY_NS
    else:
        out = ns.view("datetime64[ns]").astype("datetime64[M]").astype("datetime64[ns]").view("int64")
    return np.where(nat, _NAT, out)


def next_ns(starts: np.ndarray, period: str) -> np.ndarray:
    """Start of the following period, for period starts given as int64 nanoseconds."""
    check_period(period)
    starts = np.asarray(starts, dtype="int64")
    if period == "day":
        return starts + DAY_NS
    if period == "week":
        return starts + 7 * DAY_NS
    months = starts.view("datetime64[ns]").astype("datetime64[M]") + np.timedelta64(1, "M")
    return months.astype("datetime64[ns]").view("int64")


def floor(values: pd.Series, period: str) -> pd.Series:
    """The start of the day, week (Monday) or month holding each timestamp, as UTC timestamps.

    Examples
    --------
    >>> s = pd.Series(pd.to_datetime(["2024-03-03 23:59", "2024-03-04 00:00"], utc=True))
    >>> floor(s, "week").dt.strftime("%Y-%m-%d").tolist()
    ['2024-02-26', '2024-03-04']
    """
    out = floor_ns(as_ns(values), period).view("datetime64[ns]")
    return pd.Series(pd.DatetimeIndex(out).tz_localize("UTC"), index=values.index, name=values.name)


def period_start(ts, period: str) -> pd.Timestamp:
    """Start of the period holding one timestamp.

    Examples
    --------
    >>> period_start("2024-02-29 13:00", "month")
    Timestamp('2024-02-01 00:00:00+0000', tz='UTC')
    """
    ns = floor_ns(np.array([utc(ts).value]), period)[0]
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def period_end(ts, period: str) -> pd.Timestamp:
    """End (exclusive) of the period holding one timestamp: the start of the next one.

    Examples
    --------
    >>> period_end("2024-02-29 13:00", "month")
    Timestamp('2024-03-01 00:00:00+0000', tz='UTC')
    """
    ns = next_ns(floor_ns(np.array([utc(ts).value]), period), period)[0]
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def period_starts(start, end, period: str) -> pd.DatetimeIndex:
    """Starts of every period that overlaps ``[start, end)``, in order.

    Examples
    --------
    >>> period_starts("2024-01-15", "2024-03-01", "month").strftime("%Y-%m-%d").tolist()
    ['2024-01-01', '2024-02-01']
    """
    start_ts, end_ts = check_range(start, end)
    first = floor_ns(np.array([start_ts.value]), period)[0]
    last = floor_ns(np.array([end_ts.value - 1]), period)[0]
    if period == "month":
        months = np.arange(
            np.datetime64(int(first), "ns").astype("datetime64[M]"),
            np.datetime64(int(last), "ns").astype("datetime64[M]") + np.timedelta64(1, "M"),
        )
        ns = months.astype("datetime64[ns]").view("int64")
    else:
        step = DAY_NS * (7 if period == "week" else 1)
        # Counted in Python integers: over more than ~292 years, last - first overflows int64 (numpy's arange
        # then silently gave no periods at all).
        count = (int(last) - int(first)) // step + 1
        ns = int(first) + step * np.arange(count, dtype="int64")
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def count_periods(start, end, period: str) -> int:
    """How many periods overlap ``[start, end)``: ``len(period_starts(start, end, period))``, by arithmetic.

    Counting costs the same for a day as for a millennium, so a range can be judged before any work.

    Examples
    --------
    >>> count_periods("2024-01-15", "2024-03-01", "month")
    2
    >>> count_periods("1700-01-01", "2200-01-01", "day")
    182621
    """
    start_ts, end_ts = check_range(start, end)
    check_period(period)
    first, last = floor_ns(np.array([start_ts.value, end_ts.value - 1]), period)
    if period == "month":
        months = np.array([first, last]).view("datetime64[ns]").astype("datetime64[M]").astype("int64")
        return int(months[1] - months[0]) + 1
    step = DAY_NS * (7 if period == "week" else 1)
    return (int(last) - int(first)) // step + 1  # Python integers: centuries of nanoseconds overflow int64


def check_period_count(start, end, period: str, limit: int = MAX_PERIODS) -> int:
    """The number of periods in ``[start, end)``, or a ValueError saying it is over ``limit``.

    Examples
    --------
    >>> check_period_count("2024-01-01", "2024-02-01", "day")
    31
    >>> check_period_count("2000-01-01", "2024-01-01", "day")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: too many periods: 8766 days in [2000-01-01 ...), at most 400; narrow the range (start, end) or ...
    """
    count = count_periods(start, end, period)
    if count > limit:
        lo, hi = check_range(start, end)
        raise ValueError(
            f"too many periods: {count} {period}s in [{lo}, {hi}), at most {limit}; "
            "narrow the range (start, end) or choose a longer period"
        )
    return count


def bin_index(ns: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Which half-open bin ``[edges[i], edges[i+1])`` each timestamp falls in; -1 outside all of them."""
    idx = np.searchsorted(edges, ns, side="right") - 1
    idx[(idx >= len(edges) - 1) | (ns == _NAT)] = -1
    return idx
