"""API keys: 401 without a valid key, 403 without the scope, keys from settings or a file, never logged."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from fastapi.testclient import TestClient

from leadscore.api.main import create_app
from leadscore.serving.keys import KeyRing
from leadscore.settings import Settings

pytest_plugins = ["api_fixtures"]

LEAD = {"lead_id": "L1", "created_at": "2024-01-01T00:00:00Z"}


@pytest.fixture
def client(store_url, make_settings):
    with TestClient(create_app(make_settings(store_url))) as test_client:
        yield test_client


def post_leads(client: TestClient, key: str | None):
    headers = {} if key is None else {"X-API-Key": key}
    return client.post("/api/v1/leads", json={"leads": [LEAD]}, headers=headers)


def test_no_key_is_a_401_that_says_where_to_put_one(client):
    response = post_leads(client, None)
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"] and "'ingest'" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("APIKey")
    assert client.app.state.repository.count("leads") == 0


def test_an_unknown_key_is_a_401(client):
    response = post_leads(client, "guessed-key")
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid API key"}


def test_a_key_without_the_scope_is_a_403_naming_the_scope(client):
    response = post_leads(client, "read-key")
    assert response.status_code == 403
    assert "lacks the 'ingest' scope" in response.json()["detail"]
    assert client.app.state.repository.count("leads") == 0


@pytest.mark.parametrize("key", ["ingest-key", "all-key"])
def test_a_key_with_the_scope_is_admitted(client, key):
    assert post_leads(client, key).status_code == 200


def test_health_probes_need_no_key(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["database"]["ok"]  # 503 without a model, but answered


def test_keys_come_from_a_json_or_yaml_file_in_plain_or_hashed_form(store_url, tmp_path):
    hashed = "sha256:" + hashlib.sha256(b"hashed-secret").hexdigest()
    json_file = tmp_path / "keys.json"
    json_file.write_text(json.dumps({"plain-secret": ["ingest"], hashed: {"scopes": ["ingest"], "name": "crm"}}))
    yaml_file = tmp_path / "keys.yaml"
    yaml_file.write_text("yaml-secret: [read]\n")

    for keys_file, admitted, refused in [
        (json_file, ["plain-secret", "hashed-secret"], [hashed]),
        (yaml_file, [], ["yaml-secret"]),  # read scope only: 403 on ingestion
    ]:
        settings = Settings(database_url=store_url, data_dir=tmp_path, api_keys_file=keys_file)
        with TestClient(create_app(settings)) as client:
            for key in admitted:
                assert post_leads(client, key).status_code == 200, key
            for key in refused:
                assert post_leads(client, key).status_code in (401, 403), key


def test_the_default_keys_file_in_the_data_folder_is_used(store_url, tmp_path):
    (tmp_path / "api_keys.json").write_text(json.dumps({"file-key": ["ingest"]}))
    with TestClient(create_app(Settings(database_url=store_url, data_dir=tmp_path))) as client:
        assert post_leads(client, "file-key").status_code == 200


def test_a_keys_file_with_an_unknown_scope_is_refused_naming_it(tmp_path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"k": ["admin"]}))
    with pytest.raises(ValueError, match=r"unknown scope\(s\) \['admin'\]"):
        KeyRing.from_settings(Settings(data_dir=tmp_path, api_keys_file=keys_file))


def test_a_missing_keys_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match="nowhere.json' does not exist"):
        Settings(api_keys_file=tmp_path / "nowhere.json")


def test_keys_never_appear_in_logs_or_settings(store_url, make_settings, caplog):
    settings = make_settings(store_url)
    assert "ingest-key" not in repr(settings) and "ingest-key" not in str(settings)
    with caplog.at_level(logging.DEBUG), TestClient(create_app(settings)) as client:
        post_leads(client, "ingest-key")
        post_leads(client, "read-key")
        post_leads(client, "wrong-key")
    assert caplog.records, "expected the ingestion to be logged"
    for secret in ("ingest-key", "read-key", "wrong-key"):
        assert not any(secret in record.getMessage() for record in caplog.records)


#: Every /api/v1 route and the scope it needs.
ROUTE_SCOPES = {
    ("POST", "/api/v1/leads"): "ingest",
    ("POST", "/api/v1/events"): "ingest",
    ("POST", "/api/v1/goals"): "ingest",
    ("POST", "/api/v1/expenses"): "ingest",
    ("POST", "/api/v1/scores"): "score",
    ("GET", "/api/v1/leads/{lead_id}/score"): "score",
    ("POST", "/api/v1/model/reload"): "score",
    ("GET", "/api/v1/leads/prioritized"): "read",
    ("GET", "/api/v1/model"): "read",
    ("GET", "/api/v1/funnel"): "read",
    ("GET", "/api/v1/reps/performance"): "read",
    ("GET", "/api/v1/goals/progress"): "read",
}
KEY_OF_SCOPE = {"ingest": "ingest-key", "score": "score-key", "read": "read-key"}


def test_every_api_route_needs_a_key_with_its_scope_before_anything_else(client):
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/v1") for m in ops}
    assert routes == set(ROUTE_SCOPES), "a new route needs its scope listed here"
    for (method, path), scope in ROUTE_SCOPES.items():
        url = path.replace("{lead_id}", "L1")
        assert client.request(method, url).status_code == 401, url
        for other in {"ingest", "score", "read"} - {scope}:
            response = client.request(method, url, headers={"X-API-Key": KEY_OF_SCOPE[other]})
            assert response.status_code == 403, (url, other)
        # With the right key, what follows is the route's own answer (here: bad body, or no model yet).
        allowed = client.request(method, url, headers={"X-API-Key": KEY_OF_SCOPE[scope]})
        assert allowed.status_code not in (401, 403), url
