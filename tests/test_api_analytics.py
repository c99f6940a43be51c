"""The analytics routes give managers the funnel, rep performance and goal progress of the stored data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from leadscore import analytics
from leadscore.api.main import create_app
from leadscore.simulation.simulator import simulate

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


def as_frame(body: dict, like: pd.DataFrame) -> pd.DataFrame:
    """An analytics answer's rows as a frame with the library frame's columns and dtypes.

    The columns must be the library's, in its order; JSON has no timestamps (ISO strings) and writes a missing
    number as null, so those are read back as such before comparing.
    """
    assert body["columns"] == [str(c) for c in like.columns]
    got = pd.DataFrame(body["rows"], columns=body["columns"])
    assert [list(row) for row in body["rows"]] == [body["columns"]] * len(body["rows"])
    for column, dtype in like.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            got[column] = pd.to_datetime(got[column], utc=True).dt.as_unit(dtype.unit)
        elif pd.api.types.is_float_dtype(dtype):
            got[column] = pd.to_numeric(got[column].astype(object).where(got[column].notna(), np.nan)).astype(dtype)
        else:
            got[column] = got[column].astype(dtype)
    return got


def assert_same_table(body: dict, expected: pd.DataFrame) -> None:
    assert len(expected) > 0, "an empty table proves nothing"
    pd.testing.assert_frame_equal(as_frame(body, expected), expected.reset_index(drop=True), check_exact=True)


def test_funnel_route_returns_the_library_funnel(client, demo):
    body = client.get("/api/v1/funnel", headers=READ).json()
    assert_same_table(body, analytics.funnel(demo))


def test_funnel_summary_by_owner_returns_the_library_summary(client, demo):
    body = client.get("/api/v1/funnel", params={"group_by": "owner", "summary": "true"}, headers=READ).json()
    expected = analytics.funnel_summary(demo, group_by="owner")
    assert len(expected) == demo.leads["owner_id"].nunique()
    assert_same_table(body, expected)


def test_rep_performance_route_matches_the_library(client, demo):
    start, end = "2024-02-01T00:00:00Z", "2024-05-01T00:00:00Z"
    body = client.get("/api/v1/reps/performance", params={"start": start, "end": end}, headers=READ).json()
    assert_same_table(body, analytics.rep_performance(demo, pd.Timestamp(start), pd.Timestamp(end)))


def test_rep_performance_by_month_against_the_median_matches_the_library(client, demo):
    params = {"start": "2024-02-01T00:00:00Z", "end": "2024-05-01T00:00:00Z", "period": "month"}
    body = client.get("/api/v1/reps/performance", params={**params, "against_median": "true"}, headers=READ).json()
    frame = analytics.rep_performance(demo, pd.Timestamp(params["start"]), pd.Timestamp(params["end"]), period="month")
    assert_same_table(body, analytics.vs_team_median(frame))


@pytest.mark.parametrize("scope", ["team", None])
def test_goal_progress_route_returns_the_library_progress(client, demo, scope):
    as_of = "2024-05-15T00:00:00Z"
    params = {"as_of": as_of} | ({"scope": scope} if scope else {})
    body = client.get("/api/v1/goals/progress", params=params, headers=READ).json()
    assert_same_table(body, analytics.goal_progress(demo, pd.Timestamp(as_of), scope=scope))


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
