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


# -------------------------------------------------------------------- ranges: capped, checked before any work


@pytest.fixture
def unread_store_client(tmp_path, make_settings):
    """An app over a database with no tables at all: any request that reads the store fails there, so a clear
    answer from it proves that the request was judged before the store was read."""
    url = f"sqlite:///{tmp_path / 'no-tables.db'}"
    app = create_app(make_settings(url, run_migrations=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/v1/funnel", headers=READ).status_code >= 500  # reading it does fail
        yield client


TOO_MANY_PERIODS = [
    ("/api/v1/funnel", {"group_by": "period", "period": "day", "start": "1700-01-01", "end": "2200-01-01"}, 182_621),
    ("/api/v1/funnel", {"group_by": "period", "period": "week", "start": "2010-01-01", "end": "2020-01-01"}, 523),
    ("/api/v1/funnel", {"group_by": "period", "period": "month", "start": "1990-01-01", "end": "2024-01-01"}, 408),
    (
        "/api/v1/funnel",
        {"group_by": "period", "period": "day", "start": "1990-01-01", "end": "2024-01-01", "summary": "true"},
        12_418,
    ),  # fmt: skip
    ("/api/v1/reps/performance", {"period": "day", "start": "1700-01-01", "end": "2200-01-01"}, 182_621),
    ("/api/v1/reps/performance", {"period": "week", "start": "2010-01-01", "end": "2020-01-01"}, 523),
]


@pytest.mark.parametrize(("path", "params", "count"), TOO_MANY_PERIODS)
def test_too_many_periods_is_a_422_naming_the_limit_before_the_store_is_read(unread_store_client, path, params,
                                                                              count):  # fmt: skip
    response = unread_store_client.get(path, params=params, headers=READ)
    assert response.status_code == 422, response.text[:300]
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["query", "period"]
    assert f"too many periods: {count} {params['period']}s" in problem["msg"]
    assert "at most 400" in problem["msg"]


@pytest.mark.parametrize(
    ("start", "end", "allowed"),
    [
        ("2023-01-01T00:00:00Z", "2024-02-05T00:00:00Z", True),  # exactly 400 days
        ("2023-01-01T12:00:00Z", "2024-02-05T12:00:00Z", False),  # 400 days long, but on 401 calendar days
        ("2023-01-01T00:00:00Z", "2024-02-06T00:00:00Z", False),
    ],
)
def test_the_period_limit_counts_calendar_periods_as_the_table_would(client, start, end, allowed):
    params = {"group_by": "period", "period": "day", "start": start, "end": end}
    response = client.get("/api/v1/funnel", params=params, headers=READ)
    assert response.status_code == (200 if allowed else 422), response.text[:300]
    if allowed:
        assert len({row["period"] for row in response.json()["rows"]}) == 400


def test_a_stored_range_spanning_too_many_periods_is_a_422_too(client):
    # No range given: the data's own span decides, and a lead from 1990 makes it decades of days.
    old = {"lead_id": "OLD-1", "created_at": "1990-01-01T00:00:00Z"}
    assert client.post("/api/v1/leads", json={"leads": [old]}, headers={"X-API-Key": "ingest-key"}).status_code == 200
    for path, params in [("/api/v1/funnel", {"group_by": "period", "period": "day"}),
                         ("/api/v1/reps/performance", {"period": "day"})]:  # fmt: skip
        response = client.get(path, params=params, headers=READ)
        assert response.status_code == 422, response.text[:300]
        assert response.json()["detail"][0]["loc"] == ["query", "period"]
        assert "at most 400" in response.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "0001-01-01T00:00:00Z"}, "start"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "start"),  # before year 1 in UTC
        ({"end": "9999-12-31T23:59:59Z"}, "end"),
        ({"as_of": "9999-01-01"}, "as_of"),
        ({"start": "2024-05-01T00:00:00Z", "end": "2024-04-01T00:00:00Z"}, "end"),
        ({"start": "2024-05-01T00:00:00Z", "end": "2024-05-01T02:00:00+02:00"}, "end"),  # the same instant
        ({"start": "1710000000"}, "start"),  # a bare number: seconds or milliseconds?
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/funnel", "/api/v1/reps/performance"])
def test_a_date_out_of_range_or_a_backward_range_is_a_422_naming_the_field(client, path, params, field):
    response = client.get(path, params=params, headers=READ)
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_a_range_with_offsets_is_the_same_range_in_utc(client):
    in_utc = {"start": "2024-01-31T10:00:00Z", "end": "2024-03-01T00:00:00Z", "group_by": "period", "period": "day"}
    offset = {**in_utc, "start": "2024-02-01T00:00:00+14:00", "end": "2024-02-29T12:00:00-12:00"}
    answers = [client.get("/api/v1/funnel", params=p, headers=READ) for p in (in_utc, offset)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["rows"] == answers[1].json()["rows"]


@pytest.mark.parametrize("as_of", ["1678-01-02T00:00:00Z", "2261-12-31T00:00:00Z", "2024-03-10T23:00:00-05:00"])
def test_goal_progress_at_the_edges_of_time_is_answered(client, as_of):
    response = client.get("/api/v1/goals/progress", params={"as_of": as_of}, headers=READ)
    assert response.status_code == 200, response.text[:300]


def test_goal_progress_out_of_range_is_a_422_naming_as_of(client):
    response = client.get("/api/v1/goals/progress", params={"as_of": "0001-01-01"}, headers=READ)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "as_of"]
    assert "between 1678-01-01 and 2262-01-01" in response.json()["detail"][0]["msg"]
