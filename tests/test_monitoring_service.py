"""The monitor where people meet it: the API's /monitoring routes, `leadscore monitor`, the model page, and the
weekly figures in the version's MLflow run (idempotent when re-run). On the web tests' store: a CRM ending now,
a champion trained on it (logged with its training reference), its open leads scored by the keeper."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner
from web_forms import sign_in

pytest_plugins = ["api_fixtures", "web_fixtures"]

READ = {"X-API-Key": "read-key"}


def test_outcomes_count_the_kept_scores_as_waiting_and_need_a_read_key(web_client):
    assert web_client.get("/api/v1/monitoring/outcomes").status_code == 401
    assert web_client.get("/api/v1/monitoring/outcomes", headers={"X-API-Key": "ingest-key"}).status_code == 403
    body = web_client.get("/api/v1/monitoring/outcomes", headers=READ).json()
    version = web_client.get("/api/v1/model", headers=READ).json()["version"]
    weeks = [w for w in body["weeks"] if w["model_version"] == version]
    assert weeks, body
    # The keeper scored the open leads now: each of them is one promise of this week, still waiting.
    latest = weeks[-1]
    open_leads = web_client.get("/api/v1/leads/prioritized", headers=READ, params={"limit": 1}).json()["total"]
    assert latest["promises"] == open_leads and latest["waiting"] == open_leads and latest["resolved"] == 0
    assert "last score" in body["rule"]


def test_outcomes_refuse_unknown_parameters(web_client):
    response = web_client.get("/api/v1/monitoring/outcomes", headers=READ, params={"versoin": "1"})
    assert response.status_code == 422
    assert "versoin" in response.text


def test_the_drift_report_of_the_champion_has_every_input_and_the_score(web_client):
    body = web_client.get("/api/v1/monitoring/drift", headers=READ).json()
    assert isinstance(body["alert"], bool) and isinstance(body["reasons"], list)
    names = [row["feature"] for row in body["features"]]
    assert names[-1] == "score" and len(names) > 20
    assert {"psi", "status", "missing_reference", "missing_recent", "unseen_share"} <= set(body["features"][0])
    assert pd.Timestamp(body["cutoff"]).day_of_week == 0  # a week ending on a Monday


def test_the_model_page_shows_the_weekly_promises_in_english_and_spanish(web_client):
    sign_in(web_client)
    page = web_client.get("/app/model").text
    assert "Promises against outcomes" in page and 'id="outcomes"' in page
    spanish = web_client.get("/app/model", headers={"Accept-Language": "es"}).text
    assert "Promesas frente a resultados" in spanish and "Pendientes" in spanish


def test_leadscore_monitor_prints_json_and_logs_each_week_once(recent_store, recent_registry, tmp_path, monkeypatch):
    from leadscore.cli import app
    from leadscore.monitoring.tracking import logged_weeks
    from leadscore.serving.keeper import ScoreKeeper
    from leadscore.serving.scorer import Scorer
    from leadscore.settings import get_settings
    from leadscore.store import Repository

    monkeypatch.setenv("LEADSCORE_DATABASE_URL", recent_store)
    monkeypatch.setenv("LEADSCORE_MLFLOW_TRACKING_URI", recent_registry)
    get_settings.cache_clear()
    repo = Repository.from_url(recent_store)
    scorer = Scorer.from_registry("champion", tracking_uri=recent_registry)
    # Scores kept as of four weeks ago and now: the older ones' leads may have closed since.
    for weeks_ago in (4, 0):
        when = pd.Timestamp.now(tz="UTC") - pd.Timedelta(weeks=weeks_ago)
        ScoreKeeper(repo, lambda: scorer, follow_up_days=14, clock=lambda when=when: when).drain()
    chart = tmp_path / "reliability.svg"
    runner = CliRunner()
    first = runner.invoke(app, ["monitor", "--json", "--chart", str(chart)])
    assert first.exit_code == 0, first.output
    body = json.loads(first.output)
    assert body["outcomes"]["weeks"] and body["drift"][0]["model_version"] == scorer.model_version
    assert body["mlflow_logged"][scorer.model_version] > 0
    assert chart.read_text().lstrip().startswith("<?xml") and "<svg" in chart.read_text()
    again = json.loads(runner.invoke(app, ["monitor", "--json", "--drift-weeks", "0"]).output)
    assert again["mlflow_logged"][scorer.model_version] == 0  # nothing new: nothing logged twice
    logged = logged_weeks(scorer.model_version, recent_registry)
    weeks = pd.DataFrame(body["outcomes"]["weeks"])
    weeks = weeks[weeks["model_version"] == scorer.model_version]
    assert logged["promises"].tolist() == weeks["promises"].astype(float).tolist()
    text = runner.invoke(app, ["monitor", "--no-log", "--drift-weeks", "0"])
    assert text.exit_code == 0 and "Per model version and week" in text.output
    repo.engine.dispose()
    get_settings.cache_clear()


@pytest.mark.parametrize("path", ["/api/v1/monitoring/outcomes", "/api/v1/monitoring/drift"])
def test_the_monitoring_routes_are_in_the_openapi_page(web_client, path):
    assert path in web_client.get("/openapi.json").json()["paths"]
