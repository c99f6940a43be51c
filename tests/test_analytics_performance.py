"""Salesperson performance on a hand-built week whose every figure is worked out in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.analytics.performance import MAX_PERIODS, METRICS, rep_performance, vs_team_median
from leadscore.data.contracts import CrmData

LEADS = pd.DataFrame(
    {
        "lead_id": ["L0", "L1", "L2", "L3"],
        "created_at": ["2024-02-20", "2024-03-04 09:00", "2024-03-05 10:00", "2024-03-06 12:00"],
        "owner_id": ["bob", "ann", "bob", "ann"],
    }
)
EVENTS = pd.DataFrame(
    [
        ("1", "L1", "2024-03-04 11:00", "email_sent", "ann", None, None, None),  # L1 answered after 2 h
        ("2", "L1", "2024-03-04 15:00", "email_opened", None, None, None, None),  # no rep: counts for owner ann
        ("3", "L1", "2024-03-05 09:00", "email_replied", None, None, None, None),
        ("4", "L1", "2024-03-05 10:00", "call", "ann", 300.0, "cold", None),
        ("5", "L2", "2024-03-05 16:00", "call", "bob", 600.0, None, None),  # L2 answered after 6 h
        ("6", "L2", "2024-03-06 10:00", "call", "bob", None, None, None),  # no duration: not in the average
        ("7", "L2", "2024-03-06 11:00", "meeting_scheduled", "bob", None, None, None),
        ("8", "L2", "2024-03-08 11:00", "meeting_held", "bob", 1800.0, None, None),
        ("9", "L3", "2024-03-06 13:00", "email_sent", "ann", None, None, None),  # L3 answered after 1 h
        ("10", "L3", "2024-03-06 14:00", "meeting_scheduled", "ann", None, None, None),
        ("11", "L3", "2024-03-07 00:00", "meeting_cancelled", "ann", None, None, None),
        ("12", "L1", "2024-03-08 00:00", "won", "ann", None, None, 5000.0),
        ("13", "L0", "2024-03-10 23:59:59", "lost", "bob", None, "timing", None),  # last second of the week
        ("14", "L0", "2024-03-11 00:00", "email_sent", "bob", None, None, None),  # next week
        ("15", "L0", "2024-03-03 23:59", "call", "bob", 60.0, None, None),  # previous week
    ],
    columns=["event_id", "lead_id", "at", "type", "rep_id", "duration_s", "subtype", "amount"],
)
WEEK = ("2024-03-04", "2024-03-11")


@pytest.fixture
def perf() -> pd.DataFrame:
    return rep_performance(CrmData.from_frames(LEADS, EVENTS), *WEEK).set_index("rep_id")


def test_email_call_and_meeting_figures_per_rep(perf):
    ann, bob = perf.loc["ann"], perf.loc["bob"]
    assert ann[["emails_sent", "emails_opened", "emails_replied"]].tolist() == [2, 1, 1]
    assert (ann["open_rate"], ann["reply_rate"]) == (0.5, 0.5)
    assert ann[["calls", "cold_calls", "avg_call_duration_s"]].tolist() == [1, 1, 300.0]
    assert bob[["calls", "cold_calls", "avg_call_duration_s"]].tolist() == [2, 0, 600.0]
    assert np.isnan(bob["open_rate"])  # no email sent: the rate is unknown, not zero
    assert ann[["meetings_scheduled", "meetings_held", "meetings_cancelled", "show_rate"]].tolist() == [1, 0, 1, 0]
    assert bob[["meetings_scheduled", "meetings_held", "meetings_rejected", "show_rate"]].tolist() == [1, 1, 0, 1]


def test_outcomes_responsiveness_and_activity_per_rep(perf):
    ann, bob = perf.loc["ann"], perf.loc["bob"]
    assert ann[["won", "lost", "win_rate", "revenue", "avg_deal_size"]].tolist() == [1, 0, 1.0, 5000.0, 5000.0]
    assert bob[["won", "lost", "win_rate", "revenue"]].tolist() == [0, 1, 0.0, 0.0]
    assert np.isnan(bob["avg_deal_size"])
    assert ann[["new_leads", "median_first_response_h", "unanswered_leads"]].tolist() == [2, 1.5, 0]
    assert bob[["new_leads", "median_first_response_h"]].tolist() == [1, 6.0]
    # ann: L1 and L3 open in the week, 4 touches; bob: L0 (lost on the last second) and L2, 4 touches.
    assert ann[["open_leads", "activities", "activity_per_open_lead"]].tolist() == [2, 4, 2.0]
    assert bob[["open_leads", "activities", "activity_per_open_lead"]].tolist() == [2, 4, 2.0]


def test_team_row_recomputes_rates_from_totals(perf):
    team = perf.loc["team"]
    assert team[["emails_sent", "calls", "meetings_scheduled", "won", "lost"]].tolist() == [2, 3, 2, 1, 1]
    assert team["avg_call_duration_s"] == 450.0
    assert team["show_rate"] == 0.5 and team["win_rate"] == 0.5
    assert team["median_first_response_h"] == 2.0  # 2 h, 6 h, 1 h
    assert team[["open_leads", "activity_per_open_lead"]].tolist() == [4, 2.0]


def test_team_median_row_and_comparison(perf):
    median = perf.loc["team_median"]
    assert median["calls"] == 1.5 and median["emails_sent"] == 1.0
    assert median["open_rate"] == 0.5  # bob's unknown rate is left out, not counted as zero
    cmp = vs_team_median(perf.reset_index()).set_index(["rep_id", "metric"])
    assert cmp.loc[("ann", "calls"), "ratio"] == pytest.approx(1 / 1.5)
    assert cmp.loc[("ann", "calls"), "flag"] == "needs attention"
    assert cmp.loc[("bob", "calls"), "flag"] == "ahead"
    # Slower first response is worse: bob's 6 h against a median of 3.75 h needs attention.
    assert cmp.loc[("bob", "median_first_response_h"), "flag"] == "needs attention"
    assert set(cmp.index.get_level_values("metric")) == set(METRICS)


def test_splitting_by_day_adds_up_to_the_week():
    data = CrmData.from_frames(LEADS, EVENTS)
    daily = rep_performance(data, *WEEK, period="day")
    assert daily["period_start"].nunique() == 7
    team = daily[daily["rep_id"] == "team"]
    week = rep_performance(data, *WEEK).set_index("rep_id").loc["team"]
    for column in ("emails_sent", "calls", "won", "lost", "revenue", "new_leads", "activities"):
        assert team[column].sum() == week[column], column
    # Each day is compared with that day's median.
    cmp = vs_team_median(daily)
    tuesday = cmp[(cmp["period_start"] == pd.Timestamp("2024-03-05", tz="UTC")) & (cmp["metric"] == "calls")]
    assert tuesday.set_index("rep_id")["value"].to_dict() == {"ann": 1.0, "bob": 1.0}
    assert tuesday["team_median"].tolist() == [1.0, 1.0]


def test_unattributed_events_count_for_the_team_only():
    leads = LEADS.assign(owner_id=[None, "ann", "bob", "ann"])
    events = EVENTS.assign(rep_id=EVENTS["rep_id"].where(EVENTS["lead_id"] != "L0"))
    perf = rep_performance(CrmData.from_frames(leads, events), *WEEK).set_index("rep_id")
    assert perf.loc["team", "lost"] == 1
    assert perf.loc[["ann", "bob"], "lost"].sum() == 0


def test_bad_window_is_rejected():
    with pytest.raises(ValueError, match="ends before it starts"):
        rep_performance(CrmData.from_frames(LEADS, EVENTS), "2024-03-11", "2024-03-04")
    with pytest.raises(ValueError, match="unknown period 'fortnight'"):
        rep_performance(CrmData.from_frames(LEADS, EVENTS), *WEEK, period="fortnight")


def test_a_window_of_too_many_periods_is_refused_before_any_is_computed():
    # Found by the API fuzz test: five centuries by month (one computation per period) kept a server busy for minutes.
    data = CrmData.from_frames(LEADS, EVENTS)
    with pytest.raises(ValueError, match=f"too many periods: 6000 months .* at most {MAX_PERIODS}"):
        rep_performance(data, "1700-01-01", "2200-01-01", period="month")
    assert rep_performance(data, "2024-01-01", "2025-01-01", period="week")["period_start"].nunique() >= 52
