"""Ingestion over HTTP: idempotent, all or nothing, and every bad input a 4xx that says what and where."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from leadscore.api.main import create_app

pytest_plugins = ["api_fixtures"]

INGEST = {"X-API-Key": "ingest-key"}

LEADS = [
    {
        "lead_id": "L1",
        "created_at": "2024-01-01T09:00:00Z",
        "owner_id": "rep_1",
        "source": "web",
        "attributes": {"segment": "SMB", "company_size": 40},
    },
    {"lead_id": "L2", "created_at": "2024-01-02T10:30:00+01:00", "owner_id": "rep_2"},
]
EVENTS = [
    {"event_id": "e1", "lead_id": "L1", "at": "2024-01-02T10:00:00Z", "type": "email_sent", "rep_id": "rep_1"},
    {
        "event_id": "e2",
        "lead_id": "L1",
        "at": "2024-01-03T10:00:00Z",
        "type": "call",
        "duration_s": 120,
        "subtype": "cold",
    },
    {
        "event_id": "e3",
        "lead_id": "L2",
        "at": "2024-01-04T10:00:00",
        "type": "meeting_scheduled",
        "scheduled_for": "2024-01-10T15:00:00Z",
    },
]


@pytest.fixture
def client(store_url, make_settings):
    app = create_app(make_settings(store_url, max_batch_size=50, max_request_bytes=20_000))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def stored(client):
    assert client.post("/api/v1/leads", json={"leads": LEADS}, headers=INGEST).status_code == 200
    assert client.post("/api/v1/events", json={"events": EVENTS}, headers=INGEST).status_code == 200
    return client


def count(client: TestClient, table: str) -> int:
    return client.app.state.repository.count(table)


def test_posting_leads_creates_then_recognises_them(client):
    first = client.post("/api/v1/leads", json={"leads": LEADS}, headers=INGEST)
    again = client.post("/api/v1/leads", json={"leads": LEADS}, headers=INGEST)
    changed = client.post("/api/v1/leads", json={"leads": [{**LEADS[1], "owner_id": "rep_3"}]}, headers=INGEST)

    assert first.status_code == 200, first.text
    assert first.json() == {"received": 2, "created": 2, "updated": 0, "unchanged": 0}
    assert again.json() == {"received": 2, "created": 0, "updated": 0, "unchanged": 2}
    assert changed.json() == {"received": 1, "created": 0, "updated": 1, "unchanged": 0}
    leads = client.app.state.repository.load_leads().set_index("lead_id")
    assert leads.loc["L1", "segment"] == "SMB" and leads.loc["L1", "company_size"] == 40
    assert str(leads.loc["L2", "created_at"]) == "2024-01-02 09:30:00+00:00"


def test_a_retried_event_batch_stores_nothing_twice(stored):
    retry = stored.post("/api/v1/events", json={"events": EVENTS}, headers=INGEST)
    assert retry.status_code == 200
    assert retry.json()["inserted"] == 0 and retry.json()["already_stored"] == 3
    assert count(stored, "events") == 3


def test_the_same_event_id_with_other_content_is_a_409_naming_it(stored):
    changed = [
        {**EVENTS[1], "duration_s": 60},
        {**EVENTS[0]},
        {"event_id": "e-new", **{k: EVENTS[0][k] for k in ("lead_id", "at", "type")}},
    ]
    response = stored.post("/api/v1/events", json={"events": changed}, headers=INGEST)

    assert response.status_code == 409
    assert response.json()["conflicts"] == [{"event_id": "e2", "fields": ["duration_s"]}]
    assert "'e2'" in response.json()["detail"]
    assert count(stored, "events") == 3  # e-new was not stored: all or nothing


def test_events_may_come_with_their_leads(client):
    response = client.post("/api/v1/events", json={"events": EVENTS, "leads": LEADS}, headers=INGEST)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 3,
        "inserted": 3,
        "already_stored": 0,
        "leads": {"received": 2, "created": 2, "updated": 0, "unchanged": 0},
    }


def test_an_event_for_an_unknown_lead_is_a_422_pointing_at_the_row(stored):
    sent = [{**EVENTS[0], "event_id": "e9"}, {**EVENTS[0], "event_id": "e10", "lead_id": "ghost"}]
    response = stored.post("/api/v1/events", json={"events": sent}, headers=INGEST)

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "events", 1, "lead_id"]
    assert "unknown lead" in problem["msg"] and "ghost" in problem["msg"]
    assert count(stored, "events") == 3


def test_a_batch_with_one_bad_row_is_a_422_naming_field_and_row_and_stores_nothing(client):
    bad = [*EVENTS[:2], {**EVENTS[2], "at": "next tuesday"}]
    response = client.post("/api/v1/events", json={"events": bad, "leads": LEADS}, headers=INGEST)

    assert response.status_code == 422
    body = response.json()
    assert body["detail"][0]["loc"] == ["body", "events", 2, "at"]
    assert "nothing was stored" in body["message"]
    assert count(client, "events") == 0 and count(client, "leads") == 0


def test_a_duplicate_event_id_within_a_batch_is_a_422_naming_both_rows(client):
    client.post("/api/v1/leads", json={"leads": LEADS}, headers=INGEST)
    sent = [EVENTS[0], EVENTS[1], {**EVENTS[0], "type": "call"}]
    response = client.post("/api/v1/events", json={"events": sent}, headers=INGEST)

    assert response.status_code == 422
    locs = [p["loc"] for p in response.json()["detail"]]
    assert locs == [["body", "events", 0, "event_id"], ["body", "events", 2, "event_id"]]
    assert "e1" in response.json()["detail"][0]["msg"]
    assert count(client, "events") == 0


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"leads": [{"lead_id": "L1"}]}, ["body", "leads", 0, "created_at"]),
        ({"leads": [{**LEADS[0], "leadId": "x"}]}, ["body", "leads", 0, "leadId"]),
        ({"leads": [{**LEADS[0], "lead_id": "   "}]}, ["body", "leads", 0, "lead_id"]),
        ({"leads": [{**LEADS[0], "created_at": "3000-01-01"}]}, ["body", "leads", 0, "created_at"]),
        ({"leads": [{**LEADS[0], "created_at": 1700000000}]}, ["body", "leads", 0, "created_at"]),
        ({"leads": [{**LEADS[0], "created_at": "1700000000"}]}, ["body", "leads", 0, "created_at"]),
        ({"leads": [{**LEADS[0], "attributes": {"owner_id": "x"}}]}, ["body", "leads", 0, "attributes"]),
        ({"leads": [{**LEADS[0], "source": "a\u0000b"}]}, ["body", "leads", 0, "source"]),
        ({"leads": {"lead_id": "L1"}}, ["body", "leads"]),
        ({}, ["body", "leads"]),
    ],
)
def test_malformed_leads_are_a_422_with_the_path(client, payload, loc):
    response = client.post("/api/v1/leads", json=payload, headers=INGEST)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"duration_s": -1}, "duration_s"),
        ({"amount": "lots"}, "amount"),
        ({"amount": True}, "amount"),  # a boolean is not a number
        ({"amount": "12"}, "amount"),  # nor is text
        ({"type": ""}, "type"),
    ],
)
def test_malformed_events_are_a_422_with_the_path(stored, event, field):
    response = stored.post("/api/v1/events", json={"events": [{**EVENTS[0], **event}]}, headers=INGEST)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "events", 0, field]


def test_a_body_that_is_not_json_is_a_422(client):
    response = client.post(
        "/api/v1/events", content=b'{"events": [', headers={**INGEST, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_non_finite_numbers_are_refused(stored):
    raw = json.dumps({"events": [{**EVENTS[0], "event_id": "e7"}]}).replace('"rep_1"}', '"rep_1", "amount": NaN}')
    response = stored.post("/api/v1/events", content=raw, headers={**INGEST, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "events", 0, "amount"]


def test_a_request_over_the_size_limit_is_a_413_naming_the_limit(client):
    big = {"leads": [{**LEADS[0], "lead_id": f"L{i}", "attributes": {"note": "x" * 900}} for i in range(40)]}
    response = client.post("/api/v1/leads", json=big, headers=INGEST)
    assert response.status_code == 413
    assert "20000 bytes" in response.json()["detail"]
    assert count(client, "leads") == 0


def test_a_streamed_request_over_the_size_limit_is_a_413(client):
    def chunks():
        yield b'{"leads": ['
        for _ in range(30):
            yield b" " * 1000

    response = client.post("/api/v1/leads", content=chunks(), headers={**INGEST, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert "LEADSCORE_MAX_REQUEST_BYTES" in response.json()["detail"]


def test_a_batch_over_the_row_limit_is_a_413_naming_the_limit(client):
    leads = [{"lead_id": f"L{i}", "created_at": "2024-01-01"} for i in range(51)]
    response = client.post("/api/v1/leads", json={"leads": leads}, headers=INGEST)
    assert response.status_code == 413
    assert "51 leads" in response.json()["detail"] and "limit is 50" in response.json()["detail"]


def test_goals_and_expenses_are_stored(client):
    goals = {"goals": [{"metric": "revenue", "period": "month", "target": 5000, "start": "2024-01-01"}]}
    assert client.post("/api/v1/goals", json=goals, headers=INGEST).json() == {"stored": 1}
    expenses = {"expenses": [{"at": "2024-01-05", "amount": 120.5, "category": "ads"}]}
    ids = client.post("/api/v1/expenses", json=expenses, headers=INGEST).json()["ids"]
    assert len(ids) == 1
    bad = {"goals": [{**goals["goals"][0], "metric": "happiness"}]}
    response = client.post("/api/v1/goals", json=bad, headers=INGEST)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "goals", 0, "metric"]
    assert "'revenue'" in response.json()["detail"][0]["msg"]  # the allowed values are listed


def test_the_openapi_page_documents_the_routes_with_examples_and_the_key(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/leads", "/api/v1/events", "/healthz", "/readyz"} <= set(spec["paths"])
    scheme = spec["components"]["securitySchemes"]["APIKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    events = spec["paths"]["/api/v1/events"]["post"]
    assert events["security"] == [{"APIKey": []}]
    assert {"200", "401", "403", "409", "413", "422"} <= set(events["responses"])
    assert spec["components"]["schemas"]["EventIn"]["examples"][0]["event_id"] == "E-88121"


# ---------------------------------------------------------------------------------------------------------------
# Attributes: any name is stored as sent; the lead's own fields and oversized leads are a 422 naming the limit.

CLASHING = {"stage": "proposal", "label": 1, "cutoff": "Q3", "email_sent_7d": 4, "attr_x": True, "{x}": "y"}


def test_attributes_named_like_features_keys_or_the_label_are_stored_as_sent(client):
    lead = {"lead_id": "L9", "created_at": "2024-01-01T00:00:00Z", "attributes": CLASHING}
    response = client.post("/api/v1/leads", json={"leads": [lead]}, headers=INGEST)
    assert response.status_code == 200, response.text
    stored = client.app.state.repository.load_leads().set_index("lead_id")
    assert {k: stored.loc["L9", k] for k in CLASHING} == {**CLASHING, "label": 1.0, "email_sent_7d": 4.0, "attr_x": 1.0}


@pytest.mark.parametrize("name", ["source", "lead_id", "created_at", "owner_id"])
def test_an_attribute_named_like_a_field_of_the_lead_is_a_422_naming_it(client, name):
    lead = {"lead_id": "L9", "created_at": "2024-01-01T00:00:00Z", "attributes": {name: "x"}}
    response = client.post("/api/v1/leads", json={"leads": [lead]}, headers=INGEST)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:4] == ["body", "leads", 0, "attributes"]
    assert name in response.json()["detail"][0]["msg"] and count(client, "leads") == 0


def test_a_lead_with_too_many_attributes_or_a_huge_value_is_a_422_naming_the_limit(store_url, make_settings):
    app = create_app(make_settings(store_url))
    many = {f"field_{i}": i for i in range(100_000)}
    huge = {"notes": "x" * 2001}
    with TestClient(app) as big_client:
        for attributes, limit in ((many, "the limit is 100 per lead"), (huge, "at most 2000 characters")):
            lead = {"lead_id": "L9", "created_at": "2024-01-01T00:00:00Z", "attributes": attributes}
            response = big_client.post("/api/v1/leads", json={"leads": [lead]}, headers=INGEST)
            assert response.status_code == 422, response.text
            assert limit in response.json()["detail"][0]["msg"]
            assert response.json()["detail"][0]["loc"][:4] == ["body", "leads", 0, "attributes"]
        assert count(big_client, "leads") == 0


def test_leads_with_many_distinct_custom_fields_are_stored_sparsely(client):
    # The case, scaled to this app's batch limit: 50 leads with 100 fields each, 5,000 names in all.
    leads = [
        {"lead_id": f"L{i}", "created_at": "2024-01-01T00:00:00Z", "attributes": {f"f_{i}_{j}": j for j in range(100)}}
        for i in range(50)
    ]
    app = client.app
    with TestClient(create_app(app.state.settings.model_copy(update={"max_request_bytes": 10**7}))) as roomy:
        assert roomy.post("/api/v1/leads", json={"leads": leads}, headers=INGEST).status_code == 200
    repo = app.state.repository
    assert repo.load_leads(attributes=["f_3_7", "f_4_99"])[["f_3_7", "f_4_99"]].notna().sum().tolist() == [1, 1]
