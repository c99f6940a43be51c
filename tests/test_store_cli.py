"""`leadscore db ...` and `leadscore keys create` from the shell."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadscore.api.main import create_app
from leadscore.cli import app
from leadscore.settings import Settings, get_settings
from leadscore.store import Repository, current_revision, head_revision

pytest_plugins = ["api_fixtures"]

runner = CliRunner()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Settings from the environment, as the CLI reads them; the settings cache cleared around the test."""
    monkeypatch.setenv("LEADSCORE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_db_upgrade_creates_the_schema_and_db_current_reports_it(database_url, env):
    result = runner.invoke(app, ["db", "upgrade", "--url", database_url])
    assert result.exit_code == 0, result.output
    assert f"schema at revision {head_revision()}" in result.output
    assert current_revision(database_url) == head_revision()
    current = runner.invoke(app, ["db", "current", "--url", database_url])
    assert f"at {head_revision()}" in current.output


def test_db_upgrade_uses_the_sqlite_file_in_the_data_folder_by_default(env, tmp_path):
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (tmp_path / "leadscore.db").is_file()


def test_db_load_stores_a_data_set_once_however_often_it_runs(store_url, env, tmp_path, raw_leads, raw_events):
    folder = tmp_path / "crm"
    folder.mkdir()
    raw_leads.to_csv(folder / "leads.csv", index=False)
    raw_events.to_csv(folder / "events.csv", index=False)
    pd.DataFrame({"at": ["2024-01-03"], "amount": [99.0]}).to_csv(folder / "expenses.csv", index=False)

    for _ in range(2):
        result = runner.invoke(app, ["db", "load", str(folder), "--url", store_url, "--chunk-rows", "3"])
        assert result.exit_code == 0, result.output

    repo = Repository.from_url(store_url)
    assert (repo.count("leads"), repo.count("events"), repo.count("expenses")) == (3, 4, 1)
    repo.engine.dispose()


def test_keys_create_writes_a_digest_and_prints_a_working_key(store_url, env, tmp_path):
    result = runner.invoke(app, ["keys", "create", "--scope", "ingest", "--name", "crm"])
    assert result.exit_code == 0, result.output
    key = re.search(r"(lsk_\S+)", result.output).group(1)

    stored = json.loads((tmp_path / "api_keys.json").read_text())
    assert key not in json.dumps(stored)  # only the digest is kept
    assert list(stored.values()) == [{"scopes": ["ingest"], "name": "crm"}]

    settings = Settings(database_url=store_url, data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        lead = {"lead_id": "L1", "created_at": "2024-01-01"}
        assert client.post("/api/v1/leads", json={"leads": [lead]}, headers={"X-API-Key": key}).status_code == 200


def test_keys_create_refuses_an_unknown_scope(env):
    result = runner.invoke(app, ["keys", "create", "--scope", "admin"])
    assert result.exit_code == 2  # a usage error, not a crash
    assert "unknown scope(s) ['admin']" in result.output
