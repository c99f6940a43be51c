"""The manager's web app over HTTP (in process): signing in, what every page sends, and the same numbers as the API.

The browser's view (a real Chromium) is in tests/test_web_browser.py.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from web_forms import csrf_token, sign_in

from leadscore.api.web import i18n
from leadscore.api.web.errors import DETAILS, HEADINGS

pytest_plugins = ["api_fixtures", "web_fixtures"]

PAGES = ["/app/leads", "/app/team", "/app/goals", "/app/funnel", "/app/model"]
KEY = {"X-API-Key": "all-key"}


@pytest.mark.parametrize("path", [*PAGES, "/app/leads/L000001", "/app/leads?grade=A&page=2"])
def test_without_a_session_every_page_redirects_to_sign_in(web_client, path):
    response = web_client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/app/sign-in?next=/app/")


def test_every_page_sends_the_security_headers_and_no_inline_script(web_client):
    sign_in(web_client)
    for path in [*PAGES, "/app/sign-in"]:
        response = web_client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"
        assert "<script" not in response.text and " style=" not in response.text and "<style" not in response.text
    assert "content-security-policy" not in web_client.get("/healthz").headers  # the API's answers are left alone


def test_signing_in_gives_an_httponly_strict_session_cookie_without_the_key(web_client):
    response = sign_in(web_client)
    assert response.status_code == 303 and response.headers["location"] == "/app/leads"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("ls_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/app" in cookie and "Max-Age=" in cookie
    assert "read-key" not in cookie and "Secure" not in cookie  # plain http here; https gets Secure
    assert web_client.get("/app/leads").status_code == 200


def test_the_session_cookie_is_secure_over_https(web_settings):
    from fastapi.testclient import TestClient

    from leadscore.api.main import create_app

    with TestClient(create_app(web_settings()), base_url="https://testserver") as client:
        cookies = sign_in(client).headers.get_list("set-cookie")
    assert all("Secure" in c for c in cookies)


@pytest.mark.parametrize("key", ["nonsense", "score-key", "ingest-key", ""])
def test_a_failed_sign_in_does_not_say_which_part_failed(web_client, key):
    response = sign_in(web_client, key)
    if key == "":
        assert response.status_code == 422  # the form's field is required
        return
    assert response.status_code == 401
    assert "unknown or lacks the read scope" in response.text
    assert "ls_session" not in response.headers.get("set-cookie", "")


def test_failed_sign_ins_are_limited_per_client(web_client):
    for _ in range(5):
        assert sign_in(web_client, "guess").status_code == 401
    assert sign_in(web_client, "read-key").status_code == 429  # even the right key waits now
    assert "Too many failed sign-ins" in sign_in(web_client, "guess").text


def test_forms_without_the_csrf_token_change_nothing(web_client):
    forged = web_client.post(
        "/app/sign-in",
        data={"api_key": "read-key", "csrf_token": "forged", "next": "/app/leads"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "ls_session" not in forged.headers.get("set-cookie", "")
    sign_in(web_client)
    switched = web_client.post(
        "/app/language", data={"lang": "es", "csrf_token": "forged", "next": "/app/leads"}, follow_redirects=False
    )
    assert "ls_lang" not in switched.headers.get("set-cookie", "")
    out = web_client.post("/app/sign-out", data={"csrf_token": "forged"}, follow_redirects=False)
    assert "ls_session" not in out.headers.get("set-cookie", "")
    assert web_client.get("/app/leads", follow_redirects=False).status_code == 200  # still signed in


def test_signing_out_ends_the_session(web_client):
    sign_in(web_client)
    page = web_client.get("/app/leads")
    out = web_client.post("/app/sign-out", data={"csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and 'ls_session=""' in out.headers["set-cookie"]
    assert web_client.get("/app/leads", follow_redirects=False).status_code == 303


def test_a_forged_or_revoked_session_is_no_session(web_client, web_settings):
    from fastapi.testclient import TestClient

    from leadscore.api.main import create_app

    sign_in(web_client)
    web_client.cookies.set("ls_session", web_client.cookies["ls_session"][:-2] + "xx", path="/app")
    assert web_client.get("/app/leads", follow_redirects=False).status_code == 303
    # The same secret, but the key that signed in is no longer accepted: the session is over.
    settings = web_settings(session_secret="shared")
    with TestClient(create_app(settings)) as first:
        sign_in(first)
        cookie = first.cookies["ls_session"]
    revoked = web_settings(session_secret="shared", api_keys={"other-key": ["read"]})
    with TestClient(create_app(revoked)) as second:
        second.cookies.set("ls_session", cookie, path="/app")
        assert second.get("/app/leads", follow_redirects=False).status_code == 303
    with TestClient(create_app(settings)) as third:  # a restart with the same secret and keys keeps it
        third.cookies.set("ls_session", cookie, path="/app")
        assert third.get("/app/leads", follow_redirects=False).status_code == 200


def test_after_sign_in_the_app_goes_only_to_its_own_pages(web_client):
    for target, expected in [
        ("/app/goals", "/app/goals"),
        ("https://evil.example/", "/app/leads"),
        ("//evil.example/app", "/app/leads"),
    ]:
        token = csrf_token(web_client.get("/app/sign-in").text)  # each sign-in hands out a fresh token
        response = web_client.post(
            "/app/sign-in", data={"api_key": "read-key", "csrf_token": token, "next": target}, follow_redirects=False
        )
        assert response.headers["location"] == expected


def test_the_language_follows_the_browser_then_the_switch(web_client):
    sign_in(web_client)
    spanish = web_client.get("/app/leads", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in spanish.text and "Oportunidades de hoy" in spanish.text
    english = web_client.get("/app/leads", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="en">' in english.text and "Today&#39;s leads" in english.text
    switched = web_client.post(
        "/app/language",
        data={"lang": "es", "csrf_token": csrf_token(english.text), "next": "/app/leads?grade=A"},
        follow_redirects=False,
    )
    assert switched.headers["location"] == "/app/leads?grade=A"
    assert "ls_lang=es" in switched.headers["set-cookie"] and "HttpOnly" in switched.headers["set-cookie"]
    assert '<html lang="es">' in web_client.get("/app/leads", headers={"Accept-Language": "en"}).text


def test_todays_leads_show_the_apis_numbers_filtered_and_paged(web_client):
    sign_in(web_client)
    # A grade the store's open leads have today (the simulated CRM ends now, so which grades it holds moves).
    grade = web_client.get("/api/v1/leads/prioritized?limit=1", headers=KEY).json()["items"][0]["grade"]
    api = web_client.get(f"/api/v1/leads/prioritized?limit=1000&grade={grade}", headers=KEY).json()
    page = web_client.get(f"/app/leads?grade={grade}").text
    shown = re.findall(r'<tr data-lead="([^"]+)">.*?data-probability="([^"]+)"', page, flags=re.S)
    assert shown and len(shown) == min(25, api["total"])
    for (lead_id, probability), item in zip(shown, api["items"], strict=False):
        assert lead_id == item["lead_id"] and float(probability) == pytest.approx(item["probability"], abs=1e-12)
    if api["total"] > 25:
        second = web_client.get(f"/app/leads?grade={grade}&page=2").text
        assert re.search(r'<tr data-lead="([^"]+)"', second).group(1) == api["items"][25]["lead_id"]


def test_a_leads_page_shows_its_score_reasons_and_timeline_in_the_readers_language(web_client):
    sign_in(web_client)
    lead_id = web_client.get("/api/v1/leads/prioritized?limit=1", headers=KEY).json()["items"][0]["lead_id"]
    # The page reads the row GET /leads/{id}/score answers (the lead's kept score): the same numbers and words.
    # The service's keeper may rewrite the row at any moment (its refresh runs in a thread): read until the
    # page and both API answers come from one row, i.e. no rewrite between the first read and the last.
    for _ in range(5):
        api = web_client.get(f"/api/v1/leads/{lead_id}/score", headers=KEY).json()
        english = web_client.get(f"/app/leads/{lead_id}", headers={"Accept-Language": "en"}).text
        spanish_api = web_client.get(f"/api/v1/leads/{lead_id}/score?lang=es", headers=KEY).json()
        again = web_client.get(f"/api/v1/leads/{lead_id}/score", headers=KEY).json()
        if again["scored_at"] == api["scored_at"]:
            break
    assert f'data-probability="{api["probability"]}"' in english
    assert f'class="grade grade-{api["grade"]}">{api["grade"]}<' in english
    assert api["reasons_up"] and api["reasons_down"]
    shown = english.replace("&#39;", "'")
    for reason in api["reasons_up"] + api["reasons_down"]:
        assert reason in shown
    # In Spanish, the same score (the API's too) with its reasons said in Spanish: the lead as of the row's cutoff.
    assert {k: spanish_api[k] for k in ("probability", "grade", "cutoff", "scored_at")} == {
        k: api[k] for k in ("probability", "grade", "cutoff", "scored_at")
    }
    at_cutoff = web_client.get(
        f"/api/v1/leads/{lead_id}/score", params={"as_of": api["cutoff"], "lang": "es"}, headers=KEY
    ).json()
    assert at_cutoff["probability"] == pytest.approx(api["probability"], abs=1e-12)
    assert at_cutoff["reasons_up"] == spanish_api["reasons_up"]
    spanish = web_client.get(f"/app/leads/{lead_id}", headers={"Accept-Language": "es"}).text
    assert f'data-probability="{api["probability"]}"' in spanish
    assert spanish_api["reasons_up"] and spanish_api["reasons_up"] != api["reasons_up"]
    for reason in spanish_api["reasons_up"] + spanish_api["reasons_down"]:
        assert reason in spanish.replace("&#39;", "'")
    assert "<svg" in english and "Timeline" in english and "Historial" in spanish


def test_numbers_in_reasons_are_grouped_for_the_reader_in_the_api_and_the_app(web_client):
    sign_in(web_client)
    # A lead whose figures run to thousands: a relationship of years, a deal of millions.
    now = pd.Timestamp.now(tz="UTC")
    lead = {"lead_id": "BIG", "created_at": (now - pd.Timedelta(days=1500)).isoformat(), "owner_id": "rep_0"}
    events = [
        {
            "event_id": f"big-{k}",
            "lead_id": "BIG",
            "at": (now - pd.Timedelta(days=k)).isoformat(),
            "type": "call",
            "duration_s": 600.0,
        }
        for k in (2, 9, 20)
    ]
    events.append(
        {
            "event_id": "big-deal",
            "lead_id": "BIG",
            "at": (now - pd.Timedelta(days=3)).isoformat(),
            "type": "stage_changed",
            "stage": "proposal",
            "amount": 7_654_321.0,
        }
    )
    ingest = {"X-API-Key": "ingest-key"}
    assert web_client.post("/api/v1/leads", json={"leads": [lead]}, headers=ingest).status_code == 200
    assert web_client.post("/api/v1/events", json={"events": events}, headers=ingest).status_code == 200
    web_client.app.state.score_keeper.drain()
    items = web_client.get("/api/v1/leads/prioritized?limit=1000", headers=KEY).json()["items"]
    said = {item["lead_id"]: item["reasons_up"] + item["reasons_down"] for item in items}
    ungrouped = re.compile(r"(?<![\w.,])\d{4,}(?!\w)")  # "deal worth 36100" (a name such as expo_2026_10 aside)
    assert not [r for reasons in said.values() for r in reasons if ungrouped.search(r)]
    assert "deal worth 7,654,321" in said["BIG"]
    lead_id = "BIG"
    english = web_client.get(f"/app/leads/{lead_id}", headers={"Accept-Language": "en"}).text
    assert all(reason in english.replace("&#39;", "'") for reason in said[lead_id])
    spanish_api = web_client.get(f"/api/v1/leads/{lead_id}/score?lang=es", headers=KEY).json()
    spanish_reasons = spanish_api["reasons_up"] + spanish_api["reasons_down"]
    assert "operación de 7.654.321" in spanish_reasons
    assert not [r for r in spanish_reasons if ungrouped.search(r)]
    spanish = web_client.get(f"/app/leads/{lead_id}", headers={"Accept-Language": "es"}).text
    assert all(reason in spanish for reason in spanish_reasons)


def test_a_lead_page_follows_the_kept_row_when_the_list_table_is_older(web_client):
    """The list's cached table may hold an older score of a lead; its page shows the kept row, as the API does."""
    sign_in(web_client)
    lead_id = web_client.get("/api/v1/leads/prioritized?limit=1", headers=KEY).json()["items"][0]["lead_id"]
    web_client.get("/app/leads")  # the list's table is built and cached now
    repo = web_client.app.state.repository
    kept = repo.latest_score(lead_id)
    with repo.engine.begin() as conn:  # the keeper re-scored the lead since: another probability in its row
        conn.execute(
            sa.text("UPDATE lead_scores SET probability = :p WHERE lead_id = :id"),
            {"p": kept["probability"] / 2, "id": lead_id},
        )
    api = web_client.get(f"/api/v1/leads/{lead_id}/score", headers=KEY).json()
    assert api["probability"] == kept["probability"] / 2
    assert f'data-probability="{api["probability"]}"' in web_client.get(f"/app/leads/{lead_id}").text


@pytest.mark.parametrize(
    ("path", "status", "english", "spanish"),
    [
        ("/app/leads/nobody", 404, "No lead with that id.", "Ninguna oportunidad con ese identificador."),
        ("/app/no-such-page", 404, "Page not found", "Página no encontrada"),
        ("/app/leads?page=0", 422, "Some values in the address are not valid.", "Algunos valores de la dirección"),
        ("/app/team?range=forever", 422, "Some values in the address are not valid.", "Revise estos valores"),
        ("/app/leads/" + "x" * 201, 422, "<code>lead_id</code>", "<code>lead_id</code>"),
    ],
)
def test_errors_in_the_app_are_pages_in_the_readers_language(web_client, path, status, english, spanish):
    sign_in(web_client)
    for lang, words in (("en", english), ("es", spanish)):
        response = web_client.get(path, headers={"Accept-Language": lang})
        assert response.status_code == status
        assert response.headers["content-type"].startswith("text/html")
        assert f'<html lang="{lang}">' in response.text and words in response.text
        assert 'href="/app/leads"' in response.text  # the way back
        assert "default-src 'none'" in response.headers["content-security-policy"]
    if status == 422:
        assert "<code>" in response.text  # the field is named


def test_without_a_model_the_pages_say_so_in_the_readers_language(web_settings, tmp_path):
    from fastapi.testclient import TestClient

    from leadscore.api.main import create_app

    empty = web_settings(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'empty-mlflow.db'}")
    with TestClient(create_app(empty), base_url="http://testserver") as client:
        sign_in(client)
        page = client.get("/app/leads", headers={"Accept-Language": "es"})
        assert page.status_code == 503 and page.headers["retry-after"] == "30"
        assert page.headers["content-type"].startswith("text/html") and "No hay ningún modelo cargado." in page.text
        api = client.get("/api/v1/leads/prioritized", headers=KEY)
        assert api.status_code == 503 and "detail" in api.json()


def test_a_bug_under_the_app_is_a_500_page_with_a_logged_reference(web_settings, monkeypatch, caplog):
    from fastapi.testclient import TestClient

    from leadscore import store_analytics
    from leadscore.api.main import create_app

    def broken(repo):
        raise RuntimeError("a bug in the goals page")

    monkeypatch.setattr(store_analytics, "owners", broken)  # a fault planted in one page's call
    with TestClient(create_app(web_settings()), base_url="http://testserver", raise_server_exceptions=False) as client:
        sign_in(client)
        page = client.get("/app/goals", headers={"Accept-Language": "es"})
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "Algo ha fallado por nuestra parte." in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]  # sent outside the middleware too
        reference = re.search(r"<code>([0-9a-f]{12})</code>", page.text).group(1)
        assert any(reference in record.getMessage() for record in caplog.records)
        assert "a bug in the goals page" not in page.text  # the traceback is logged, never shown


def test_the_apis_errors_stay_json(web_client):
    lead = web_client.get("/api/v1/leads/nobody/score", headers=KEY)
    assert lead.status_code == 404 and lead.json()["detail"] == "no lead 'nobody' in the store"
    unknown = web_client.get("/api/v1/no-such-route", headers=KEY)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/json"
    invalid = web_client.get("/api/v1/leads/prioritized?limit=0", headers=KEY)
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["query", "limit"]


def test_an_unknown_lead_without_a_session_still_goes_to_sign_in(web_client):
    response = web_client.get("/app/leads/nobody", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/app/sign-in")


@pytest.mark.parametrize("group_by", ["period", "owner", "source"])
def test_the_funnels_chart_is_the_whole_cohort_whatever_the_table_is_grouped_by(web_client, group_by):
    sign_in(web_client)

    def chart(query: str) -> str:
        return re.search(
            r"<figure class=\"chart-box\">(.*?)</figure>", web_client.get(f"/app/funnel{query}").text
        ).group(1)

    overall = chart("?range=all")
    assert re.findall(r">(\d[\d,]*)</text>", overall)  # the counts are written beside the bars
    assert chart(f"?range=all&group_by={group_by}") == overall


def test_the_goals_page_reads_the_months_target_from_its_progress_rows(web_client):
    """The burn-up takes its target from the progress rows the page already has: the same as reading the goals."""
    from leadscore import store_analytics
    from leadscore.api.web.analytics_pages import month_target

    repo = web_client.app.state.repository
    checked = 0
    for scope in ["team", *store_analytics.owners(repo)]:
        progress = store_analytics.goal_progress(repo, scope=scope)
        for metric in ("revenue", "conversions", "expenses"):
            target = month_target(progress, metric)
            checked += target == target  # a goal is set (NaN when none)
            by_goals = store_analytics.goal_burnup(repo, metric, period="month", scope=scope)
            by_target = store_analytics.goal_burnup(repo, metric, period="month", scope=scope, target=target)
            pd.testing.assert_frame_equal(by_target, by_goals)
    assert checked >= 3


def test_every_word_of_the_templates_has_its_spanish(web_client):
    templates = files("leadscore.api.web") / "templates"
    texts = set()
    for template in Path(str(templates)).glob("*.html"):
        texts |= set(re.findall(r"""\bt\(\s*["']([^"']+)["']\s*\)""", template.read_text()))
    assert len(texts) > 30
    texts |= set(HEADINGS.values()) | DETAILS  # the error pages' words, given to t() as values
    missing = sorted(text for text in texts if not i18n.has_words(text, "es"))
    assert not missing


def test_the_templates_and_static_files_ship_inside_the_package():
    web = files("leadscore.api.web")
    assert (web / "templates" / "base.html").is_file() and (web / "static" / "app.css").is_file()
    root = Path(__file__).resolve().parents[1]
    pyproject = (root / "pyproject.toml").read_text()
    assert '"leadscore.api.web" = ["templates/*.html", "static/*"]' in pyproject


@pytest.mark.slow
def test_the_built_wheel_holds_the_templates_and_the_stylesheet(tmp_path):
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(root), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = tmp_path.glob("leadscore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.name for p in (root / "api" / "web" / "templates").glob("*.html")}
    assert {f"leadscore/api/web/templates/{name}" for name in templates} <= names
    assert "leadscore/api/web/static/app.css" in names
