"""The funnel on a hand-built history whose every figure is worked out in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.analytics.funnel import cohorts, funnel, funnel_summary, lost_opportunities, lost_reasons
from leadscore.data.contracts import CrmData

# A: new 2 d -> contacted 3 d -> qualified 4 d -> proposal 10 d -> won 1000 (cycle 19 d); a repeated
#    "contacted" on Jan 5 is not a new stay.
# B: new 2 d -> contacted 10 d -> lost for "price" (12 d open).
# C: new 1 d -> contacted 4 d -> qualified, still open.
# D: new 10 d -> won 3000 without stage changes (cycle 10 d): a win counts as having passed every stage.
LEADS = pd.DataFrame(
    {
        "lead_id": ["A", "B", "C", "D"],
        "created_at": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-02-01"],
        "owner_id": ["ann", "ann", "bob", "bob"],
        "source": ["web", "web", "referral", "web"],
        "segment": ["SMB", "enterprise", "SMB", "SMB"],
    }
)
EVENTS = pd.DataFrame(
    [
        ("a1", "A", "2024-01-03", "stage_changed", "contacted", None, None),
        ("a2", "A", "2024-01-05", "stage_changed", "contacted", None, None),
        ("a3", "A", "2024-01-06", "stage_changed", "qualified", None, None),
        ("a4", "A", "2024-01-10", "stage_changed", "proposal", None, None),
        ("a5", "A", "2024-01-20", "won", None, 1000.0, None),
        ("b1", "B", "2024-01-04", "stage_changed", "contacted", None, None),
        ("b2", "B", "2024-01-14", "lost", None, None, "price"),
        ("c1", "C", "2024-01-04", "stage_changed", "contacted", None, None),
        ("c2", "C", "2024-01-08", "stage_changed", "qualified", None, None),
        ("d1", "D", "2024-02-11", "won", None, 3000.0, None),
    ],
    columns=["event_id", "lead_id", "at", "type", "stage", "amount", "subtype"],
)


@pytest.fixture
def data() -> CrmData:
    return CrmData.from_frames(LEADS, EVENTS)


def test_funnel_counts_conversions_and_drop_off(data):
    f = funnel(data).set_index("stage")
    assert f["leads_reached"].tolist() == [4, 4, 3, 2, 2, 2]
    expected_conversion = [1.0, 0.75, 2 / 3, 1.0, 1.0]
    np.testing.assert_allclose(f["conversion_to_next"].iloc[:5], expected_conversion)
    np.testing.assert_allclose(f["drop_off"].iloc[:5], [0.0, 0.25, 1 / 3, 0.0, 0.0])
    assert np.isnan(f.loc["won", "conversion_to_next"])
    np.testing.assert_allclose(f["share_of_entered"], [1, 1, 0.75, 0.5, 0.5, 0.5])
    assert f.loc["contacted", "lost_here"] == 1 and f["lost_here"].sum() == 1
    assert f.loc["qualified", "open_here"] == 1 and f["open_here"].sum() == 1


def test_time_in_stage_median_and_p90_over_completed_stays(data):
    f = funnel(data).set_index("stage")
    # new: A 2, B 2, C 1, D 10; contacted: A 3, B 10, C 4; qualified: A 4 (C still there, censored).
    assert f.loc["new", "median_days_in_stage"] == 2.0
    assert f.loc["new", "p90_days_in_stage"] == pytest.approx(2 + 0.7 * 8)
    assert f.loc["contacted", "median_days_in_stage"] == 4.0
    assert f.loc["contacted", "p90_days_in_stage"] == pytest.approx(4 + 0.8 * 6)
    assert f.loc["qualified", "median_days_in_stage"] == 4.0
    assert f.loc["proposal", "median_days_in_stage"] == 10.0
    assert np.isnan(f.loc["negotiation", "median_days_in_stage"])


def test_summary_win_rate_revenue_and_cycle_time(data):
    s = funnel_summary(data).iloc[0]
    assert (s["leads"], s["open"], s["won"], s["lost"]) == (4, 1, 2, 1)
    assert s["win_rate"] == pytest.approx(2 / 3)
    assert s["conversion_rate"] == 0.5
    assert s["won_revenue"] == 4000.0 and s["avg_deal_size"] == 2000.0
    assert s["median_cycle_days"] == 14.5  # A 19 d, D 10 d
    assert s["p90_cycle_days"] == pytest.approx(10 + 0.9 * 9)
    assert s["median_days_to_close"] == 12.0  # A 19, B 12, D 10


def test_summary_by_period_owner_source_and_segment(data):
    by_month = funnel_summary(data, group_by="period", period="month")
    assert by_month["period"].dt.strftime("%Y-%m").tolist() == ["2024-01", "2024-02"]
    assert by_month["leads"].tolist() == [3, 1]
    assert by_month["win_rate"].tolist() == [0.5, 1.0]
    by_owner = funnel_summary(data, group_by="owner").set_index("owner")
    assert by_owner.loc["ann", "win_rate"] == 0.5 and by_owner.loc["bob", "win_rate"] == 1.0
    assert by_owner.loc["bob", "open"] == 1
    by_source = funnel_summary(data, group_by="source").set_index("source")
    assert by_source["leads"].to_dict() == {"referral": 1, "web": 3}
    by_segment = funnel(data, group_by="segment")
    smb = by_segment[by_segment["segment"] == "SMB"].set_index("stage")
    assert smb["leads_reached"].tolist() == [3, 3, 3, 2, 2, 2]  # A, C, D


def test_weekly_periods_include_empty_weeks(data):
    by_week = funnel_summary(data, "2024-01-01", "2024-02-05", group_by="period", period="week")
    assert len(by_week) == 5  # weeks of Jan 1, 8, 15, 22, 29 (Mondays)
    assert by_week["leads"].tolist() == [3, 0, 0, 0, 1]


def test_window_selects_the_cohort_by_creation_date(data):
    # [Jan 2, Jan 3) holds B only.
    s = funnel_summary(data, "2024-01-02", "2024-01-03").iloc[0]
    assert (s["leads"], s["lost"]) == (1, 1)


def test_as_of_ignores_later_events_and_leads(data):
    # On Jan 15, A sits in proposal (won on the 20th), B is lost, C is in qualified, D does not exist yet.
    f = funnel(data, as_of="2024-01-15").set_index("stage")
    assert f["leads_reached"].tolist() == [3, 3, 2, 1, 0, 0]
    s = funnel_summary(data, as_of="2024-01-15").iloc[0]
    assert (s["leads"], s["won"], s["lost"], s["open"]) == (3, 0, 1, 2)


def test_cohorts_share_won_by_month_and_unknown_future(data):
    c = cohorts(data, max_months=2, as_of="2024-04-01")
    jan = c[c["cohort"] == pd.Timestamp("2024-01-01", tz="UTC")]
    feb = c[c["cohort"] == pd.Timestamp("2024-02-01", tz="UTC")]
    np.testing.assert_allclose(jan["share_won"], [1 / 3, 1 / 3, 1 / 3])
    assert feb["share_won"].iloc[:2].tolist() == [1.0, 1.0]
    assert np.isnan(feb["share_won"].iloc[2])  # April has not ended on April 1
    assert feb["won"].isna().tolist() == [False, False, True]


def test_lost_opportunities_and_reasons(data):
    lost = lost_opportunities(data)
    assert lost[["lead_id", "reason", "furthest_stage", "days_open"]].values.tolist() == [
        ["B", "price", "contacted", 12.0]
    ]
    assert lost.loc[0, "owner_id"] == "ann"
    reasons = lost_reasons(data, group_by="owner")
    assert reasons[["owner", "reason", "lost", "share"]].values.tolist() == [["ann", "price", 1, 1.0]]
    assert lost_reasons(data, "2024-01-15", "2024-02-01").empty


def test_stage_changes_after_closing_are_ignored():
    events = pd.concat(
        [
            EVENTS,
            pd.DataFrame(
                [("b3", "B", "2024-01-20", "stage_changed", "negotiation", None, None)], columns=EVENTS.columns
            ),
        ]  # fmt: skip
    )
    f = funnel(CrmData.from_frames(LEADS, events)).set_index("stage")
    assert f.loc["negotiation", "leads_reached"] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group_by": "colour"}, "unknown grouping 'colour'"),
        ({"group_by": "period", "period": "year"}, "unknown period 'year'"),
        ({"start": "2024-02-01", "end": "2024-01-01"}, "ends before it starts"),
        ({"start": "2024-02-01", "end": "2024-02-01"}, "empty"),
        ({"start": "not a date", "end": "2024-02-01"}, "start 'not a date'"),
    ],
)
def test_bad_parameters_are_named(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        funnel(data, **kwargs)


def test_a_funnel_by_too_many_periods_is_refused_before_any_is_computed():
    data = CrmData.from_frames(LEADS, EVENTS)
    with pytest.raises(ValueError, match=r"too many periods: 182621 days .* at most 400"):
        funnel(data, "1700-01-01", "2200-01-01", group_by="period", period="day")
    with pytest.raises(ValueError, match=r"too many periods: 401 days"):
        funnel_summary(data, "2024-01-01", "2025-02-05", group_by="period", period="day")
    assert funnel(data, "2024-01-01", "2025-02-04", group_by="period", period="day")["period"].nunique() == 400
