"""Half-open, UTC periods: a boundary never counts an event twice or drops it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.analytics.actuals import actuals
from leadscore.analytics.periods import (
    MAX_PERIODS,
    check_period_count,
    check_range,
    count_periods,
    floor,
    period_end,
    period_start,
    period_starts,
    utc,
)
from leadscore.data.contracts import CrmData


def _ts(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True))


@pytest.mark.parametrize(
    ("period", "moment", "start"),
    [
        ("day", "2024-03-04 00:00:00", "2024-03-04"),
        ("day", "2024-03-03 23:59:59.999999999", "2024-03-03"),
        ("week", "2024-03-04 00:00:00", "2024-03-04"),  # a Monday starts its own week
        ("week", "2024-03-10 23:59:59.999999999", "2024-03-04"),  # Sunday's last instant: still that week
        ("week", "1969-12-31 12:00", "1969-12-29"),  # before the epoch too
        ("month", "2024-02-29 23:59:59.999999999", "2024-02-01"),  # leap day
        ("month", "2024-03-01 00:00:00", "2024-03-01"),
        ("month", "2023-12-31 23:59", "2023-12-01"),
    ],
)
def test_floor_puts_boundary_instants_in_the_period_they_start(period, moment, start):
    assert floor(_ts(moment), period).iloc[0] == pd.Timestamp(start, tz="UTC")


def test_offsets_are_converted_to_utc_before_flooring():
    # 00:30 on 1 March in Paris is 23:30 on 29 February in UTC.
    assert floor(_ts("2024-03-01T00:30:00+01:00"), "month").iloc[0] == pd.Timestamp("2024-02-01", tz="UTC")
    assert utc("2024-03-01T00:30:00+01:00") == pd.Timestamp("2024-02-29 23:30", tz="UTC")
    naive = utc(pd.Timestamp("2024-03-01"))  # naive means UTC: the same wall time, now marked UTC
    assert str(naive.tz) == "UTC" and naive == pd.Timestamp("2024-03-01", tz="UTC")


def test_missing_times_stay_missing():
    out = floor(pd.Series(pd.to_datetime(["2024-03-05", None], utc=True)), "week")
    assert out.iloc[0] == pd.Timestamp("2024-03-04", tz="UTC") and pd.isna(out.iloc[1])


def test_period_start_end_and_starts():
    assert period_end("2023-12-15", "month") == pd.Timestamp("2024-01-01", tz="UTC")
    assert period_start("2024-03-10 23:00", "week") == pd.Timestamp("2024-03-04", tz="UTC")
    weeks = period_starts("2024-03-04", "2024-03-18", "week")
    assert weeks.strftime("%m-%d").tolist() == ["03-04", "03-11"]  # 18 March is excluded
    assert period_starts("2024-03-04", "2024-03-18 00:00:01", "week").size == 3


@pytest.mark.parametrize(("period", "count"), [("day", 182_621), ("week", 26_090), ("month", 6_000)])
def test_period_starts_over_centuries_are_all_there(period, count):
    # Found by the API fuzz test: over more than ~292 years the span in nanoseconds overflows int64, and days and
    # weeks used to come back as no periods at all.
    starts = period_starts("1700-01-01", "2200-01-01", period)
    assert starts.size == count
    assert starts[0] <= pd.Timestamp("1700-01-01", tz="UTC") < starts[1]
    assert starts[-1] < pd.Timestamp("2200-01-01", tz="UTC")
    assert (np.diff(starts.asi8) > 0).all()


def test_range_errors_name_the_problem():
    with pytest.raises(ValueError, match="ends before it starts"):
        check_range("2024-03-02", "2024-03-01")
    with pytest.raises(ValueError, match="empty"):
        check_range("2024-03-01", "2024-03-01")
    with pytest.raises(ValueError, match="end 'soon' is not a readable timestamp"):
        check_range("2024-03-01", "soon")


# Leads created at every kind of boundary in [1 Feb, 1 Apr): midnights, Mondays, month ends, both sides.
BOUNDARY_TIMES = [
    "2024-01-31 23:59:59.999999",  # before the range
    "2024-02-01 00:00:00",  # the range's first instant
    "2024-02-04 23:59:59.999999",  # Sunday's last instant
    "2024-02-05 00:00:00",  # Monday midnight
    "2024-02-29 23:59:59.999999",  # February's last instant
    "2024-03-01 00:00:00",  # March's first
    "2024-03-01T00:30:00+01:00",  # February in UTC
    "2024-03-31 23:59:59.999999",  # the range's last instant
    "2024-04-01 00:00:00",  # the range's end: excluded
]


@pytest.fixture
def boundary_data() -> CrmData:
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(len(BOUNDARY_TIMES))], "created_at": BOUNDARY_TIMES})
    return CrmData.from_frames(leads, pd.DataFrame({"event_id": [], "lead_id": [], "at": [], "type": []}))


def test_every_boundary_event_is_counted_exactly_once_at_every_granularity(boundary_data):
    totals = {
        period: actuals(boundary_data, "new_leads", "2024-02-01", "2024-04-01", period=period)["actual"].sum()
        for period in ("day", "week", "month")
    }
    assert totals == {"day": 7.0, "week": 7.0, "month": 7.0}


def test_month_bins_at_the_boundaries(boundary_data):
    monthly = actuals(boundary_data, "new_leads", "2024-02-01", "2024-04-01", period="month")
    assert monthly["actual"].tolist() == [5.0, 2.0]  # Feb: 1st, Sun, Mon, 29th, Paris 00:30; Mar: 1st, 31st
    assert monthly["cumulative"].tolist() == [5.0, 7.0]


def test_week_bins_cut_at_monday_midnight(boundary_data):
    weekly = actuals(boundary_data, "new_leads", "2024-02-01", "2024-02-12", period="week")
    # The range starts on a Thursday: the first week is cut to [1 Feb, 5 Feb).
    assert weekly["period_start"].dt.strftime("%m-%d").tolist() == ["01-29", "02-05"]
    assert weekly["actual"].tolist() == [2.0, 1.0]


def test_daily_bins_sum_to_the_total_of_any_range(boundary_data):
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-30", "2024-04-03", freq="D", tz="UTC")
    for _ in range(20):
        a, b = sorted(rng.choice(len(days), 2, replace=False))
        start, end = days[a], days[b]
        created = boundary_data.leads["created_at"]
        expected = float(((created >= start) & (created < end)).sum())
        assert actuals(boundary_data, "new_leads", start, end, period="day")["actual"].sum() == expected
        assert actuals(boundary_data, "new_leads", start, end, period="week")["actual"].sum() == expected


# Instants from 1678 to 2261 (pandas' nanosecond range), biased towards period boundaries by whole-day values.
_INSTANTS = st.one_of(
    st.integers(pd.Timestamp("1678-01-02").value, pd.Timestamp("2261-12-31").value),
    st.integers(-106_000, 106_000).map(lambda day: day * 86_400 * 10**9),
).map(lambda ns: pd.Timestamp(ns, tz="UTC"))


_DAY_NS = 86_400 * 10**9
# Ranges of a nanosecond to three years (around the limit of 400 days, weeks or months), some of whole days.
_LENGTHS = st.one_of(st.integers(1, 1100 * _DAY_NS), st.integers(1, 1100).map(lambda days: days * _DAY_NS))


@settings(max_examples=300, deadline=None)
@given(start=_INSTANTS, length=_LENGTHS, period=st.sampled_from(["day", "week", "month"]))
def test_counting_periods_agrees_with_listing_them(start, length, period):
    end_ns = start.value + length
    end = pd.Timestamp(end_ns if end_ns < pd.Timestamp("2262-01-01").value else start.value + 1, tz="UTC")
    count = count_periods(start, end, period)
    assert count == len(period_starts(start, end, period))
    assert (count > MAX_PERIODS) == (_checked(start, end, period) is None)


def _checked(start, end, period) -> int | None:
    try:
        return check_period_count(start, end, period)
    except ValueError as err:
        assert f"at most {MAX_PERIODS}" in str(err)
        return None


def test_the_period_limit_is_counted_in_calendar_periods():
    assert count_periods("2023-01-01", "2024-02-05", "day") == MAX_PERIODS
    assert count_periods("2023-01-01 12:00", "2024-02-05 12:00", "day") == MAX_PERIODS + 1  # 400 days on 401 dates
    assert count_periods("2024-01-31 23:59", "2024-02-01 00:01", "month") == 2
    assert count_periods("1678-01-01", "2262-01-01", "day") == 213_301  # no int64 overflow on the way
