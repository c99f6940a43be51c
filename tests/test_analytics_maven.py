"""The real Maven CRM pipeline, converted to leads and events, against figures computed with plain pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.analytics.actuals import actuals
from leadscore.analytics.funnel import funnel, funnel_summary
from leadscore.analytics.performance import rep_performance
from leadscore.data.importers import MAVEN_MAPPING, OpportunityMapping, load_maven, opportunities_to_crm


@pytest.fixture(scope="module")
def maven_dir(shared_data):
    folder = shared_data / "maven_crm_sales_opportunities"
    if not (folder / "sales_pipeline.csv").exists():
        pytest.skip(f"the Maven CRM pipeline is not at {folder}")
    return folder


@pytest.fixture(scope="module")
def raw(maven_dir) -> pd.DataFrame:
    """The pipeline joined with its teams, read independently of the importer."""
    pipeline = pd.read_csv(maven_dir / "sales_pipeline.csv", parse_dates=["engage_date", "close_date"])
    teams = pd.read_csv(maven_dir / "sales_teams.csv")
    return pipeline.merge(teams, on="sales_agent", how="left")


@pytest.fixture(scope="module")
def imported(maven_dir):
    return load_maven(maven_dir)


def _win_rate(raw: pd.DataFrame, key: str) -> pd.Series:
    closed = raw[raw["deal_stage"].isin(["Won", "Lost"])]
    return (closed["deal_stage"] == "Won").groupby(closed[key]).mean()


def test_undated_prospects_are_skipped_with_a_reason(imported, raw):
    assert len(imported.data.leads) == (raw["engage_date"].notna()).sum() == 8300
    assert imported.skipped["deal_stage"].unique().tolist() == ["Prospecting"]
    assert imported.skipped["skip_reason"].unique().tolist() == ["no engage_date"]


@pytest.mark.parametrize(("group_by", "column"), [("owner", "sales_agent"), ("manager", "manager"),
                                                  ("regional_office", "regional_office")])  # fmt: skip
def test_win_rate_per_agent_manager_and_office(imported, raw, group_by, column):
    ours = funnel_summary(imported.data, group_by=group_by).set_index(group_by)["win_rate"]
    theirs = _win_rate(raw, column)
    pd.testing.assert_series_equal(ours.sort_index(), theirs.sort_index(), check_names=False, check_index_type=False)


def test_rep_performance_win_rate_and_revenue_per_agent(imported, raw):
    perf = rep_performance(imported.data).set_index("rep_id")
    theirs = _win_rate(raw, "sales_agent")
    np.testing.assert_allclose(perf.loc[theirs.index, "win_rate"], theirs.to_numpy())
    revenue = raw[raw["deal_stage"] == "Won"].groupby("sales_agent")["close_value"].sum()
    np.testing.assert_allclose(perf.loc[revenue.index, "revenue"], revenue.to_numpy())
    assert perf.loc["team", "revenue"] == revenue.sum()


def test_median_days_to_close(imported, raw):
    closed = raw[raw["deal_stage"].isin(["Won", "Lost"])]
    cycle = (closed["close_date"] - closed["engage_date"]).dt.days
    summary = funnel_summary(imported.data).iloc[0]
    assert summary["median_days_to_close"] == cycle.median()
    won = raw["deal_stage"] == "Won"
    assert summary["median_cycle_days"] == (raw.loc[won, "close_date"] - raw.loc[won, "engage_date"]).dt.days.median()
    by_agent = funnel_summary(imported.data, group_by="owner").set_index("owner")["median_days_to_close"]
    theirs = cycle.groupby(closed["sales_agent"]).median()
    np.testing.assert_allclose(by_agent.loc[theirs.index].to_numpy(), theirs.to_numpy())


def test_won_revenue_per_month(imported, raw):
    ours = actuals(imported.data, "revenue", "2017-01-01", "2018-01-01", period="month")
    won = raw[raw["deal_stage"] == "Won"]
    theirs = won.groupby(won["close_date"].dt.to_period("M"))["close_value"].sum()
    theirs = theirs.reindex(pd.period_range("2017-01", "2017-12", freq="M"), fill_value=0.0)
    np.testing.assert_allclose(ours["actual"].to_numpy(), theirs.to_numpy())
    assert ours["period_start"].dt.strftime("%Y-%m").tolist() == theirs.index.strftime("%Y-%m").tolist()


def test_funnel_stages_follow_the_mapping(imported, raw):
    f = funnel(imported.data).set_index("stage")
    dated = raw[raw["engage_date"].notna()]
    assert f.loc["contacted", "leads_reached"] == len(dated)  # Engaging is mapped to "contacted"
    assert f.loc["won", "leads_reached"] == (dated["deal_stage"] == "Won").sum()
    assert f.loc["contacted", "lost_here"] == (dated["deal_stage"] == "Lost").sum()
    assert f.loc["contacted", "open_here"] == (dated["deal_stage"] == "Engaging").sum()


def test_the_converter_is_driven_by_the_mapping_not_by_maven_names():
    table = pd.DataFrame(
        {
            "deal": ["x1", "x2", "x3", "x4"],
            "opened": ["2024-01-01", "2024-01-02", None, "2024-01-05"],
            "closed": ["2024-01-09", "2024-01-05", None, "2024-01-03"],
            "status": ["Closed Won", "Closed Lost", "Open", "Closed Won"],
            "worth": [100, 50, None, 10],
            "why": [None, "price", None, None],
            "rep": ["r1", "r2", "r1", "r1"],
        }
    )
    mapping = OpportunityMapping.from_dict(
        {
            "id": "deal",
            "created_at": "opened",
            "closed_at": "closed",
            "stage": "status",
            "won": ["Closed Won"],
            "lost": ["Closed Lost"],
            "value": "worth",
            "owner": "rep",
            "lost_reason": "why",
        }  # fmt: skip
    )
    imported = opportunities_to_crm(table, mapping)
    assert imported.skipped["skip_reason"].tolist() == ["no opened", "closes before it starts"]
    ev = imported.data.events.set_index("event_id")
    assert ev.loc["x1:close", ["type", "amount"]].tolist() == ["won", 100.0]
    assert ev.loc["x2:close", ["type", "subtype"]].tolist() == ["lost", "price"]
    assert pd.isna(ev.loc["x2:close", "amount"])  # a lost deal carries no revenue
    assert imported.data.leads["owner_id"].tolist() == ["r1", "r2"]


def test_mapping_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown key"):
        OpportunityMapping.from_dict({"identifier": "x"})
    with pytest.raises(ValueError, match="not among ours"):
        OpportunityMapping(id="a", created_at="b", stage="c", won=("W",), lost=("L",), open_stages={"X": "demo"})
    with pytest.raises(ValueError, match=r"column\(s\) \['engage_date'"):
        opportunities_to_crm(pd.DataFrame({"opportunity_id": ["1"]}), MAVEN_MAPPING)
