"""Hostile or broken request bodies and queries: each is a clear 4xx naming what and where, never a 500.

The values a JSON reader still accepts but no feature can be (an integer of hundreds of digits, a number too big
for a float, the non-standard ``NaN`` and ``Infinity``, lists and objects nested a thousand deep, strings of
megabytes, a key given twice), sent as feature rows, as lead attributes and as event fields, against a real
model in a throwaway registry; and query strings of thousands of parameters, refused by the limits of
:mod:`leadscore.api.limits` with a valid key (without one they are a 401: tests/test_api_security.py).
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from leadscore import registry
from leadscore.api.limits import MAX_QUERY_BYTES, MAX_QUERY_PARAMETERS
from leadscore.api.main import create_app
from leadscore.features.builder import build_features

pytest_plugins = ["api_fixtures"]

KEY = {"X-API-Key": "all-key"}
JSON = {**KEY, "Content-Type": "application/json"}
SENTINEL = '"@SENTINEL@"'

#: Raw JSON for a value: what a client's serialiser (or an attacker) may write where a feature value goes.
HOSTILE = {
    "huge-integer": "9" * 400,
    "huge-negative-integer": "-" + "9" * 400,
    "integer-past-pythons-digit-limit": "9" * 5000,  # int("9" * 5000) is refused by Python itself
    "float-overflowing-to-infinity": "1e400",
    "negative-float-overflowing": "-1e400",
    "nan-literal": "NaN",
    "infinity-literal": "Infinity",
    "negative-infinity-literal": "-Infinity",
    "list-1000-deep": "[" * 1000 + "]" * 1000,
    "object-1000-deep": '{"a": ' * 1000 + "1" + "}" * 1000,
}
#: Deeper than any JSON reader should follow: refused as a whole body, at the position where it goes too deep.
TOO_DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def client(store_url, make_settings, model_registry):
    registry.promote("1", uri=model_registry)
    with TestClient(create_app(make_settings(store_url, mlflow_tracking_uri=model_registry))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def feature_row(crm_sample) -> dict:
    features = build_features(crm_sample.leads, crm_sample.events, "2024-10-01T00:00:00Z")
    return json.loads(features.head(1).drop(columns="cutoff").to_json(orient="records"))[0]


def post_raw(client: TestClient, body: str):
    return client.post("/api/v1/scores", content=body.encode("utf-8"), headers=JSON)


def assert_refused_at(response, loc: list) -> None:
    """A 422 whose first problem is at ``loc`` (or inside it: a value that fits none of a field's types may name
    the type it failed, as pydantic does for attributes)."""
    assert response.status_code == 422, response.text[:500]
    body = response.json()
    assert body["detail"][0]["loc"][: len(loc)] == loc, body
    assert "nothing was stored" in body["message"]
    assert len(response.text) < 2_000  # the value is named shortened, never echoed whole


@pytest.mark.parametrize("column", ["call_total", "stage"], ids=["numeric-feature", "text-feature"])
@pytest.mark.parametrize("raw", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_feature_value_is_a_422_naming_its_cell(client, feature_row, column, raw):
    row = {**feature_row, column: "@SENTINEL@"}
    records = json.dumps({"dataframe_records": [feature_row, row]}).replace(SENTINEL, raw)
    assert_refused_at(post_raw(client, records), ["body", "dataframe_records", 1, column])
    split = json.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}})
    position = list(row).index(column)
    assert_refused_at(post_raw(client, split.replace(SENTINEL, raw)), ["body", "dataframe_split", "data", 0, position])


def history(crm_sample) -> dict:
    lead = crm_sample.leads.iloc[0]
    events = crm_sample.events[crm_sample.events["lead_id"] == lead["lead_id"]].head(3)
    return {
        "leads": [{"lead_id": lead["lead_id"], "created_at": lead["created_at"].isoformat(), "attributes": {}}],
        "events": [
            {"lead_id": e.lead_id, "at": e.at.isoformat(), "type": e.type} for e in events.itertuples(index=False)
        ],
        "cutoff": "2024-10-01T00:00:00Z",
    }


@pytest.mark.parametrize("raw", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_attribute_or_event_value_is_a_422_naming_it(client, crm_sample, raw):
    body = history(crm_sample)
    body["leads"][0]["attributes"] = {"segment": "@SENTINEL@"}
    assert_refused_at(post_raw(client, json.dumps(body).replace(SENTINEL, raw)),
                      ["body", "leads", 0, "attributes", "segment"])  # fmt: skip
    body = history(crm_sample)
    body["events"][1]["duration_s"] = "@SENTINEL@"
    response = post_raw(client, json.dumps(body).replace(SENTINEL, raw))
    assert_refused_at(response, ["body", "events", 1, "duration_s"])


def opening_past_the_limit(body: str, limit: int = 1024) -> int:
    """Where the first bracket opening level ``limit + 1`` is (no text in these bodies holds a bracket)."""
    depth = 0
    for position, char in enumerate(body):
        depth += (char in "[{") - (char in "]}")
        if depth > limit:
            return position
    raise AssertionError("not nested that deep")


@pytest.mark.parametrize("path", ["/api/v1/scores", "/api/v1/leads"])
def test_a_body_nested_deeper_than_1024_levels_is_a_422_naming_where_and_the_limit(client, feature_row, path):
    value = {"dataframe_records": [{**feature_row, "stage": "@SENTINEL@"}]}
    if path == "/api/v1/leads":
        value = {"leads": [{"lead_id": "L1", "created_at": "2024-01-01", "attributes": {"segment": "@SENTINEL@"}}]}
    body = json.dumps(value).replace(SENTINEL, TOO_DEEP)
    response = client.post(path, content=body.encode(), headers=JSON)
    assert response.status_code == 422, response.text[:300]
    problem = response.json()["detail"][0]
    assert problem["loc"][0] == "body" and abs(problem["loc"][1] - opening_past_the_limit(body)) <= 1
    assert "nested deeper than 1024 levels" in problem["msg"]


def test_hostile_values_are_refused_by_the_ingestion_routes_too(client, crm_sample):
    for raw in HOSTILE.values():
        lead = {"lead_id": "L1", "created_at": "2024-01-01T00:00:00Z", "attributes": {"segment": "@SENTINEL@"}}
        body = json.dumps({"leads": [lead]}).replace(SENTINEL, raw)
        response = client.post("/api/v1/leads", content=body.encode(), headers=JSON)
        assert_refused_at(response, ["body", "leads", 0, "attributes", "segment"])
    assert client.app.state.repository.count("leads") == 0


def test_a_text_feature_of_megabytes_is_a_422_naming_its_cell_and_the_limit(client, feature_row):
    row = {**feature_row, "stage": "x" * 1_000_000}
    response = client.post("/api/v1/scores", json={"dataframe_records": [feature_row, row]}, headers=KEY)
    assert_refused_at(response, ["body", "dataframe_records", 1, "stage"])
    assert "2000 characters" in response.json()["detail"][0]["msg"]


def test_a_body_of_ten_megabytes_is_a_413_naming_the_limit(client, feature_row):
    row = {**feature_row, "stage": "x" * 10 * 1024 * 1024}
    response = client.post("/api/v1/scores", json={"dataframe_records": [row]}, headers=KEY)
    assert response.status_code == 413
    assert "LEADSCORE_MAX_REQUEST_BYTES" in response.json()["detail"]


def test_a_key_given_twice_counts_once_the_last_one_as_every_json_reader_does(client, feature_row):
    # RFC 8259 leaves a repeated name to the reader; Python's, orjson and MLflow's scoring server keep the last.
    # Refusing it would mean parsing every body a second, slower way, for a mistake that changes no number here:
    # the answer is the one for the last value, never a 500.
    raw = json.dumps({"dataframe_records": [feature_row]})
    twice = raw[: -len("}]}")] + ', "stage": "lost"}]}'
    once = json.dumps({"dataframe_records": [{**feature_row, "stage": "lost"}]})
    assert json.loads(twice) == json.loads(once)
    answers = [post_raw(client, body) for body in (twice, once)]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text[:300]
    assert answers[0].json()["scores"] == answers[1].json()["scores"]


def query_of(count: int) -> str:
    return "&".join(f"x{i}=1" for i in range(count))  # 39 kB for 5,000: under what HTTP clients refuse


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/funnel"), ("POST", "/api/v1/scores"), ("GET", "/api/v1/model")]
)
def test_thousands_of_query_parameters_with_a_valid_key_are_a_414_naming_the_limit(client, method, path):
    response = client.request(method, f"{path}?{query_of(5_000)}", headers=KEY)
    assert response.status_code == 414, response.text[:300]
    assert f"{MAX_QUERY_BYTES} bytes" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/funnel"), ("POST", "/api/v1/scores"), ("GET", "/api/v1/model")]
)
def test_more_query_parameters_than_any_route_takes_are_a_422_naming_the_limit(client, method, path):
    short = "&".join(f"q{i}=" for i in range(MAX_QUERY_PARAMETERS + 1))
    assert len(short) < MAX_QUERY_BYTES
    response = client.request(method, f"{path}?{short}", headers=KEY)
    assert response.status_code == 422, response.text[:300]
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["query"]
    assert f"{MAX_QUERY_PARAMETERS + 1} query parameters" in problem["msg"]
    assert f"at most {MAX_QUERY_PARAMETERS}" in problem["msg"]


def test_an_offset_beyond_any_database_integer_is_a_422_naming_it(client):
    # Found by the fuzz test: an offset of 5e21 reached PostgreSQL ("bigint out of range") and SQLite (a 500).
    answer = client.get("/api/v1/leads/prioritized?offset=5038573158120758968320", headers=KEY)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "offset"]
    assert client.get(f"/api/v1/leads/prioritized?offset={2**31 - 1}", headers=KEY).status_code in (200, 409)
