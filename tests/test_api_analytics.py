"""The analytics routes give managers the funnel, rep performance and goal progress of the stored data."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from leadscore import analytics
from leadscore.simulator import simulate

pytest_plugins = ["api_fixtures"]

READ = {"X-API-Key": "read-key"}


@pytest.fixture(scope="module")
def demo():
    return simulate(n_leads=400, n_reps=4, months=6, seed=3).data


@pytest.fixture
def client(repo, store_url, make_settings, demo):
    repo.import_crm(demo)
    with TestClient(create_app(make_settings(store_url))) as client:
        yield client


def test_funnel_route_returns_the_library_funnel(client, demo):
    body = client.get("/api/v1/funnel", headers=READ).json()
    expected = analytics.funnel(demo)
    assert [row["stage"] for row in body["rows"]] == expected["stage"].tolist()
    assert [row["leads_reached"] for row in body["rows"]] == expected["leads_reached"].tolist()


def test_funnel_summary_by_owner_has_a_row_per_owner(client, demo):
    body = client.get("/api/v1/funnel", params={"group_by": "owner", "summary": "true"}, headers=READ).json()
    assert len(body["rows"]) == demo.leads["owner_id"].nunique()


def test_rep_performance_route_matches_the_library(client, demo):
    start, end = "2024-02-01T00:00:00Z", "2024-05-01T00:00:00Z"
    body = client.get("/api/v1/reps/performance", params={"start": start, "end": end}, headers=READ).json()
    expected = analytics.rep_performance(demo, pd.Timestamp(start), pd.Timestamp(end))
    got = pd.DataFrame(body["rows"])
    key = "rep_id"
    assert sorted(got[key]) == sorted(expected[key])
    merged = got.merge(expected, on=key, suffixes=("_api", "_lib"))
    assert (merged["emails_sent_api"] == merged["emails_sent_lib"]).all()


def test_goal_progress_route_lists_goals_in_force(client, demo):
    as_of = "2024-05-15T00:00:00Z"
    body = client.get("/api/v1/goals/progress", params={"as_of": as_of, "scope": "team"}, headers=READ).json()
    expected = analytics.goal_progress(demo, pd.Timestamp(as_of), scope="team")
    assert len(body["rows"]) == len(expected) > 0


def test_unknown_grouping_is_a_422_naming_the_parameter(client):
    response = client.get("/api/v1/funnel", params={"group_by": "colour"}, headers=READ)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "group_by"]
    assert "colour" in response.text


def test_range_that_ends_before_it_starts_is_a_422(client):
    params = {"start": "2024-05-01T00:00:00Z", "end": "2024-04-01T00:00:00Z"}
    response = client.get("/api/v1/reps/performance", params=params, headers=READ)
    assert response.status_code == 422
    assert "ends before it starts" in response.text
    assert response.json()["detail"][0]["loc"] == ["query", "end"]


def test_performance_over_too_many_periods_is_a_422_naming_the_period(client):
    params = {"start": "1700-01-01T00:00:00Z", "end": "2200-01-01T00:00:00Z", "period": "day"}
    response = client.get("/api/v1/reps/performance", params=params, headers=READ)
    assert response.status_code == 422
    assert "too many periods" in response.text
    assert response.json()["detail"][0]["loc"] == ["query", "period"]


def test_analytics_need_the_read_scope(client):
    assert client.get("/api/v1/funnel").status_code == 401
    assert client.get("/api/v1/funnel", headers={"X-API-Key": "ingest-key"}).status_code == 403
