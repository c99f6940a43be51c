"""Liveness and readiness probes, and start-up that creates or upgrades the database."""

from __future__ import annotations

from fastapi.testclient import TestClient

from leadscore.api.main import create_app
from leadscore.store import create_engine, current_revision, head_revision, upgrade_database

pytest_plugins = ["api_fixtures"]


def test_liveness_is_always_ok(store_url, make_settings):
    with TestClient(create_app(make_settings(store_url))) as client:
        assert client.get("/healthz").json() == {"status": "ok"}


def test_without_a_model_readiness_is_a_503_saying_how_to_train(store_url, make_settings):
    with TestClient(create_app(make_settings(store_url))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["database"] == {"ok": True, "detail": "reachable", "revision": head_revision()}
    assert body["model"]["loaded"] is False and "leadscore train" in body["model"]["detail"]


def test_readiness_is_a_503_saying_why_when_the_database_is_unreachable(store_url, make_settings):
    with TestClient(create_app(make_settings(store_url))) as client:
        client.app.state.engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/nothing")
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
    assert response.json()["database"]["ok"] is False
    assert "unreachable" in response.json()["database"]["detail"]


def test_start_up_creates_a_new_database(database_url, make_settings):
    with TestClient(create_app(make_settings(database_url))) as client:
        assert client.get("/readyz").json()["database"]["ok"]
    assert current_revision(database_url) == head_revision()


def test_start_up_upgrades_an_old_database_in_place(database_url, make_settings):
    upgrade_database(database_url, "0001")
    with TestClient(create_app(make_settings(database_url))) as client:
        assert client.get("/readyz").json()["database"]["revision"] == head_revision()


def test_without_migrations_at_start_up_an_old_schema_is_not_ready(database_url, make_settings):
    upgrade_database(database_url, "0001")
    with TestClient(create_app(make_settings(database_url, run_migrations=False))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"]["detail"] == f"schema at 0001, expected {head_revision()}"
