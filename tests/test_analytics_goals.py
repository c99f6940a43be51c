"""Goal progress, month against month, budgets and the forecast on a hand-built history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from leadscore.analytics.forecast import forecast
from leadscore.analytics.goals import (
    expenses_vs_budget,
    goal_burnup,
    goal_progress,
    month_over_month,
    month_over_month_daily,
)
from leadscore.data.contracts import CrmData

LEADS = pd.DataFrame(
    {
        "lead_id": ["G1", "G2", "G3", "G4", "P1", "P2", "P3"],
        "created_at": ["2024-01-15"] * 4 + ["2024-02-01"] * 3,
        "owner_id": ["ann", "ann", "bob", "bob", "ann", "bob", "bob"],
    }
)
EVENTS = pd.DataFrame(
    [
        ("w1", "G1", "2024-03-01 00:00", "won", None, 3000.0),  # first instant of March: March, not February
        ("w2", "G2", "2024-02-29 23:59:59", "won", None, 2000.0),  # last second of February
        ("w3", "G3", "2024-03-06 00:00", "won", None, 4000.0),  # no rep: counts for bob, the owner
        ("w4", "G4", "2024-02-05 00:00", "won", None, 1000.0),
        ("c0", "P1", "2024-03-03 23:59", "call", "ann", None),  # Sunday: the week before
        ("c1", "P1", "2024-03-04 00:00", "call", "ann", None),  # Monday midnight: this week
        ("c2", "P1", "2024-03-05 10:00", "call", "ann", None),
        ("c3", "P1", "2024-03-06 10:00", "call", "ann", None),
        ("s1", "P1", "2024-02-10 00:00", "stage_changed", "ann", 800.0),  # P1's deal value
    ],
    columns=["event_id", "lead_id", "at", "type", "rep_id", "amount"],
)
GOALS = pd.DataFrame(
    {
        "metric": ["revenue", "revenue", "conversions", "calls", "expenses"],
        "period": ["month", "month", "month", "week", "month"],
        "target": [10000.0, 20000.0, 4.0, 5.0, 1000.0],
        "start": ["2024-01-01", "2024-03-01", "2024-01-01", "2024-03-04", "2024-01-01"],
        "scope": ["team", "team", "team", "ann", "team"],
    }
)
EXPENSES = pd.DataFrame({"at": ["2024-03-02", "2024-03-09", "2024-02-10"], "amount": [300.0, 200.0, 500.0]})
AS_OF = "2024-03-07 12:00"  # 6.5 days into March (31 days), 3.5 days into the week of Monday 4 March


@pytest.fixture
def data() -> CrmData:
    return CrmData.from_frames(LEADS, EVENTS, GOALS, EXPENSES)


@pytest.fixture
def progress(data) -> pd.DataFrame:
    return goal_progress(data, AS_OF).set_index(["metric", "period", "scope"])


def test_revenue_goal_uses_the_latest_target_and_counts_boundaries_once(progress):
    r = progress.loc[("revenue", "month", "team")]
    assert r["target"] == 20000.0  # the March goal replaced January's
    assert r["actual"] == 7000.0  # 3000 at 1 March 00:00 + 4000; not the 2000 of 29 February 23:59:59
    assert r["pct_of_target"] == pytest.approx(35.0)
    assert r["expected_to_date"] == pytest.approx(20000 * 6.5 / 31)
    assert r["on_track"] and r["status"] == "on track"
    assert r["daily_target"] == pytest.approx(20000 / 31)
    assert r["days_left"] == 25.0  # 7 to 31 March, today included
    assert r["needed_daily_rate"] == pytest.approx(13000 / 25)
    assert r["last_period_actual"] == 3000.0  # February: 1000 + 2000
    assert r["last_period_same_point"] == 1000.0  # 1 to 7 February 12:00
    assert r["change_vs_same_point"] == pytest.approx(6.0)
    assert r["period_start"] == pd.Timestamp("2024-03-01", tz="UTC")
    assert r["period_end"] == pd.Timestamp("2024-04-01", tz="UTC")


def test_weekly_rep_goal_starts_on_monday(progress):
    c = progress.loc[("calls", "week", "ann")]
    assert c["actual"] == 3.0  # Monday 00:00, Tuesday, Wednesday; not Sunday 23:59
    assert c["expected_to_date"] == 2.5 and c["status"] == "on track"
    assert c["daily_target"] == pytest.approx(5 / 7)
    assert c["days_left"] == 4.0 and c["needed_daily_rate"] == 0.5
    assert c["last_period_actual"] == 1.0 and c["last_period_same_point"] == 0.0
    assert np.isnan(c["change_vs_same_point"])


def test_expense_budget_over_pace_and_conversions(progress):
    e = progress.loc[("expenses", "month", "team")]
    assert e["actual"] == 300.0  # the 9 March expense is after as_of
    assert e["status"] == "over pace" and not e["on_track"]  # 300 > 1000 x 6.5 / 31
    assert e["needed_daily_rate"] == 28.0  # 700 left to spend over 25 days
    conv = progress.loc[("conversions", "month", "team")]
    assert conv["actual"] == 2.0 and conv["status"] == "on track"


def test_filters_and_goals_not_started_yet(data):
    assert goal_progress(data, AS_OF, scope="ann")["metric"].tolist() == ["calls"]
    assert goal_progress(data, AS_OF, metric="revenue")["target"].tolist() == [20000.0]
    # Before 4 March the calls goal does not exist yet; in February the January revenue target holds.
    early = goal_progress(data, "2024-02-15").set_index("metric")
    assert "calls" not in early.index and early.loc["revenue", "target"] == 10000.0
    with pytest.raises(ValueError, match="unknown metric 'sales'"):
        goal_progress(data, AS_OF, metric="sales")


def test_burnup_accumulates_daily_and_stops_at_as_of(data):
    b = goal_burnup(data, "revenue", AS_OF)
    assert len(b) == 31
    assert b["cumulative"].iloc[0] == 3000.0 and b["cumulative"].iloc[5] == 7000.0
    assert b["cumulative"].iloc[6] == 7000.0  # 7 March has begun: shown
    assert b["cumulative"].iloc[7:].isna().all()  # from 8 March on: not yet
    assert b["target_cumulative"].iloc[-1] == pytest.approx(20000.0)


def test_month_over_month_to_the_same_point(data):
    mom = month_over_month(data, AS_OF, metrics=("revenue", "expenses")).set_index("metric")
    assert mom.loc["revenue"].tolist()[:3] == [7000.0, 1000.0, 3000.0]
    assert mom.loc["expenses"].tolist()[:3] == [300.0, 0.0, 500.0]  # 10 February is past the same point
    daily = month_over_month_daily(data, "revenue", AS_OF)
    assert daily["this_month"].iloc[[0, 5, 6]].tolist() == [3000.0, 7000.0, 7000.0]
    assert daily["this_month"].iloc[7:].isna().all()
    assert daily["last_month"].iloc[28] == 3000.0 and daily["last_month"].iloc[29:].isna().all()


def test_expenses_against_budget_and_cost_per_conversion(data):
    e = expenses_vs_budget(data, "2024-02-01", "2024-04-01")
    assert e["expenses"].tolist() == [500.0, 500.0]
    assert e["budget"].tolist() == [1000.0, 1000.0]
    assert e["remaining_budget"].tolist() == [500.0, 500.0]
    assert e["conversions"].tolist() == [2.0, 2.0]
    assert e["cost_per_conversion"].tolist() == [250.0, 250.0]
    assert expenses_vs_budget(data, "2024-02-01", "2024-03-01", period="week")["budget"].isna().all()


def test_forecast_adds_the_pipeline_with_a_poisson_binomial_interval(data):
    pipeline = pd.DataFrame(
        {
            "lead_id": ["P1", "P2", "P3", "G1"],  # G1 is already won: left out
            "probability": [0.5, 0.2, 0.9, 0.7],
            "deal_value": [None, 1000.0, 2000.0, 100.0],  # P1 takes its stage amount, 800
            "expected_close_at": ["2024-03-20", "2024-03-25", "2024-04-15", "2024-03-10"],  # P3 closes later
        }
    )
    f = forecast(data, pipeline, AS_OF, level=0.9).set_index("metric")
    conv, rev = f.loc["conversions"], f.loc["revenue"]
    assert conv["pipeline_leads"] == 3
    assert conv["actual_to_date"] == 2.0 and conv["expected_from_pipeline"] == pytest.approx(0.7)
    assert conv["std"] == pytest.approx(np.sqrt(0.25 + 0.16))
    assert rev["actual_to_date"] == 7000.0
    assert rev["expected_from_pipeline"] == pytest.approx(0.5 * 800 + 0.2 * 1000)
    assert rev["std"] == pytest.approx(np.sqrt(0.25 * 800**2 + 0.16 * 1000**2))
    z = norm.ppf(0.95)
    assert rev["high"] == pytest.approx(7000 + 600 + z * rev["std"])
    assert rev["low"] == pytest.approx(7000 + max(0.0, 600 - z * rev["std"]))
    assert conv["target"] == 4.0
    # Two more conversions are needed, at most two are possible (P1, P2): P = 0.5 x 0.2 in truth.
    assert conv["prob_reaching_target"] == pytest.approx(norm.sf((1.5 - 0.7) / np.sqrt(0.41)))


def test_forecast_without_timing_spreads_the_horizon_over_the_days_left(data):
    pipeline = pd.DataFrame({"lead_id": ["P2"], "probability": [0.5], "deal_value": [1000.0]})
    f = forecast(data, pipeline, AS_OF, period="week", scope="bob").set_index("metric")
    q = 1 - 0.5 ** (3.5 / 90)  # 3.5 days left in the week, a 90-day horizon
    assert f.loc["conversions", "expected_from_pipeline"] == pytest.approx(q)
    assert f.loc["revenue", "expected_from_pipeline"] == pytest.approx(1000 * q)
    assert np.isnan(f.loc["revenue", "target"])


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (pd.DataFrame({"lead_id": ["P1"]}), "needs column"),
        (pd.DataFrame({"lead_id": ["P1"], "probability": [1.5]}), r"\[0, 1\].*P1"),
        (pd.DataFrame({"lead_id": ["nope"], "probability": [0.5]}), "not in the data set: \\['nope'\\]"),
        (pd.DataFrame({"lead_id": ["P1", "P1"], "probability": [0.5, 0.4]}), "more than once"),
    ],
)
def test_forecast_rejects_bad_pipelines(data, pipeline, message):
    with pytest.raises(ValueError, match=message):
        forecast(data, pipeline, AS_OF)
