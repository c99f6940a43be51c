"""API keys: 401 without a valid key, 403 without the scope, keys from settings or a file, never logged."""

from __future__ import annotations

import hashlib
import json
import logging
import socket

import httpx
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
    ("GET", "/api/v1/monitoring/outcomes"): "read",
    ("GET", "/api/v1/monitoring/drift"): "read",
    ("POST", "/api/v1/webhooks"): "webhooks",
    ("GET", "/api/v1/webhooks"): "webhooks",
    ("GET", "/api/v1/webhooks/{subscription_id}"): "webhooks",
    ("DELETE", "/api/v1/webhooks/{subscription_id}"): "webhooks",
    ("GET", "/api/v1/webhooks/{subscription_id}/deliveries"): "webhooks",
    ("POST", "/api/v1/webhooks/{subscription_id}/redeliver"): "webhooks",
    ("POST", "/api/v1/webhooks/{subscription_id}/ping"): "webhooks",
}
KEY_OF_SCOPE = {"ingest": "ingest-key", "score": "score-key", "read": "read-key", "webhooks": "webhooks-key"}


def test_every_api_route_needs_a_key_with_its_scope_before_anything_else(client):
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/v1") for m in ops}
    assert routes == set(ROUTE_SCOPES), "a new route needs its scope listed here"
    for (method, path), scope in ROUTE_SCOPES.items():
        url = path.replace("{lead_id}", "L1").replace("{subscription_id}", "1")
        assert client.request(method, url).status_code == 401, url
        for other in set(KEY_OF_SCOPE) - {scope}:
            response = client.request(method, url, headers={"X-API-Key": KEY_OF_SCOPE[other]})
            assert response.status_code == 403, (url, other)
        # With the right key, what follows is the route's own answer (here: bad body, or no model yet).
        allowed = client.request(method, url, headers={"X-API-Key": KEY_OF_SCOPE[scope]})
        assert allowed.status_code not in (401, 403), url


# -------------------------------------------------------------------- cheap rejections first

# Short names: uvicorn refused a request line of 74 kB with its own 400; these 5,000 make 39 kB and reach the app.
UNKNOWN_PARAMETERS = "&".join(f"x{i}=1" for i in range(5_000))
MEGABYTE_BODY = b'{"leads": [' + b'{"lead_id": "L", "created_at": "2024-01-01"},' * 23_000 + b"{}]}"


def call_asgi(client: TestClient, method: str, path: str, query: str = "", headers: dict | None = None):
    """Send one request straight to the app (its lifespan run by ``client``) with a body that records whether it
    was read: (status, JSON answer, whether the app asked for the body)."""
    asked: list[bool] = []
    sent: list[dict] = []

    async def receive() -> dict:
        asked.append(True)
        return {"type": "http.request", "body": MEGABYTE_BODY, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(MEGABYTE_BODY)).encode()),
            *raw_headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    client.portal.call(client.app, scope, receive, send)
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:])), bool(asked)


@pytest.mark.parametrize(("method", "path"), list(ROUTE_SCOPES))
def test_without_a_valid_key_no_body_is_read_and_no_query_parsed_before_the_401(client, method, path):
    url = path.replace("{lead_id}", "L1")
    for headers in ({}, {"X-API-Key": "guessed-key"}):
        status, answer, read_body = call_asgi(client, method, url, UNKNOWN_PARAMETERS, headers)
        assert status == 401, answer
        assert not read_body, "the body was read before the key was checked"
        # The same answer as a request without parameters: the 5,000 unknown ones were never looked at.
        assert answer == client.request(method, url, headers=headers).json()


def test_a_key_without_the_scope_is_refused_before_the_body_is_read(client):
    status, answer, read_body = call_asgi(
        client, "POST", "/api/v1/leads", UNKNOWN_PARAMETERS, {"X-API-Key": "read-key"}
    )
    assert (status, read_body) == (403, False)
    assert "lacks the 'ingest' scope" in answer["detail"]


def test_over_http_a_request_without_a_key_is_answered_401_without_waiting_for_its_body(store_url, make_server):
    server = make_server(store_url)
    # Headers announcing a 1 MB body that never comes: the answer must not wait for it.
    head = (
        f"POST /api/v1/leads?{UNKNOWN_PARAMETERS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(MEGABYTE_BODY)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(head.encode())
        status_line = conn.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 401"), status_line
    # And sent in full, a 1 MB body with thousands of parameters is still the plain 401.
    response = httpx.post(f"{server.base_url}/api/v1/leads?{UNKNOWN_PARAMETERS}", content=MEGABYTE_BODY,
                          headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
    assert response.status_code == 401
    assert response.json()["detail"].startswith("missing API key")
    with_key = {"Content-Type": "application/json", "X-API-Key": "ingest-key"}
    admitted = httpx.post(f"{server.base_url}/api/v1/leads?{UNKNOWN_PARAMETERS}", content=MEGABYTE_BODY,
                          headers=with_key, timeout=30)  # fmt: skip
    assert admitted.status_code == 414  # with a valid key, the next check: the query string is too long
