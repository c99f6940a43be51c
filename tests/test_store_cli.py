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


def flat(output: str) -> str:
    """The CLI's words without the box rich draws around an error (its lines may break anywhere)."""
    return " ".join(output.replace("│", " ").split())


def _kept(store_url, rows: dict[str, tuple[float, str, str]]) -> None:
    """Leads with kept scores: lead id -> (probability, grade, changed_at)."""
    import sqlalchemy as sa

    from leadscore.store.tables import lead_scores_table as t

    repo = Repository.from_url(store_url)
    repo.ingest(leads=pd.DataFrame({"lead_id": list(rows), "created_at": ["2024-01-01"] * len(rows)}))
    with repo.engine.begin() as conn:
        for lead, (probability, grade, changed) in rows.items():
            conn.execute(
                sa.update(t)
                .where(t.c.lead_id == lead)
                .values(
                    probability=probability,
                    grade=grade,
                    stale=False,
                    model_version="3",
                    reasons={"up": ["replied to an email"], "down": []},
                    changed_at=pd.Timestamp(changed).to_pydatetime(),
                    computed_at=pd.Timestamp("2024-03-05T00:00Z").to_pydatetime(),
                )
            )
    repo.engine.dispose()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_changed_since_writes_only_the_kept_scores_changed_after_that_time(store_url, env, tmp_path, suffix):
    _kept(
        store_url,
        {
            "before": (0.40, "B", "2024-03-01T10:00Z"),
            "at": (0.41, "B", "2024-03-02T12:00Z"),  # exactly at the time: not after it
            "after": (0.72, "A", "2024-03-02T12:00:00.000001Z"),
            "later": (0.05, "D", "2024-03-04T08:00Z"),
        },
    )
    out = tmp_path / f"changed{suffix}"
    args = ["score", "--changed-since", "2024-03-02T12:00:00Z", "--db", store_url, "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 kept scores changed since" in result.output
    written = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert written["lead_id"].tolist() == ["after", "later"]
    assert written["grade"].tolist() == ["A", "D"]
    assert written["probability"].tolist() == [0.72, 0.05]
    assert written["reasons_up"].tolist() == ["replied to an email"] * 2
    assert {"changed_at", "model_version", "cutoff", "percentile", "stale"} <= set(written.columns)


@pytest.mark.parametrize("bad", ["yesterday-ish", "2024-13-45", "NaT", ""])
def test_score_changed_since_refuses_what_is_not_a_time_naming_the_option(store_url, env, tmp_path, bad):
    out = tmp_path / "changed.csv"
    result = runner.invoke(app, ["score", "--changed-since", bad, "--db", store_url, "--out", str(out)])
    assert result.exit_code == 2, result.output
    said = flat(result.output)
    assert "--changed-since" in said and "is not a time" in said
    assert not out.exists()


def test_score_changed_since_reads_the_store_not_a_data_set(store_url, env, tmp_path):
    args = ["score", "--changed-since", "2024-03-01", "--data", str(tmp_path), "--db", store_url]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "give no --data or --table" in flat(result.output)
