"""The web app in a real browser: a sales manager's Monday morning, in headless Chromium.

Debian's ``chromium`` (``apt-get install -y chromium``, ``make browser``) driven by Playwright against a real uvicorn
on a seeded store: sign in, filter the list, open a lead, switch language; the numbers on screen are the API's;
every field is labelled, the keyboard reaches everything, and a phone (375 px) never scrolls sideways.
Screenshots go to build/screenshots/ (the README shows copies from docs/screenshots/).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from leadscore.api.web.i18n import fmt_percent

pytest_plugins = ["api_fixtures", "web_fixtures"]

CHROMIUM = os.environ.get("LEADSCORE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
KEY = {"X-API-Key": "all-key"}
PAGES = ["/app/leads", "/app/team", "/app/goals", "/app/funnel", "/app/model"]
UNKNOWN_LEAD = "/app/leads/nobody"

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"the browser tests need Debian's chromium at {CHROMIUM}: `apt-get install -y chromium` (or `make browser`)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need `pip install playwright`")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        # Never `playwright install`: the system's chromium. No sandbox: the tests may run as root (CI).
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser, web_server):
    """A fresh browser context (no cookies) at a given size and language; console errors are collected (a
    CSP violation is one) and must be none."""
    contexts, errors = [], []

    def make(width: int = 1280, height: int = 900, locale: str = "en-US"):
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale=locale, base_url=web_server.base_url
        )
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                errors.append((message.text, message.location.get("url", ""))) if message.type == "error" else None
            ),
        )
        return page

    yield make
    for context in contexts:
        context.close()
    # A refused sign-in answers 401 and the unknown lead 404 on purpose; anything else (a CSP violation, a missing
    # file) is a fault.
    expected = [(text, url) for text, url in errors if "status of 401" in text or url.endswith(UNKNOWN_LEAD)]
    assert len(expected) == len(errors), errors


def shot(page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page, key: str = "read-key") -> None:
    page.goto("/app/leads")
    assert "/app/sign-in" in page.url  # no session: every page sends you to sign in
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/leads")


def api(web_server, path: str) -> dict:
    response = httpx.get(f"{web_server.base_url}{path}", headers=KEY, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_managers_morning_sign_in_filter_open_a_lead_switch_language(open_page, web_server):
    page = open_page()
    page.goto("/app/goals")
    shot(page, "sign-in")
    page.get_by_label("API key").fill("score-key")  # a key without `read` does not get in
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("That key cannot sign in")
    sign_in(page)

    # The list on screen is the API's list, rank by rank, in the same numbers.
    listed = api(web_server, "/api/v1/leads/prioritized?limit=25")
    rows = page.locator("tr[data-lead]")
    assert rows.count() == len(listed["items"])
    for i, item in enumerate(listed["items"][:10]):
        row = rows.nth(i)
        assert row.get_attribute("data-lead") == item["lead_id"]
        assert row.locator("td").nth(2).inner_text() == fmt_percent(item["probability"], "en")
    shot(page, "leads")

    # Filter: the top lead's grade (the simulated CRM ends now, so which grades it holds moves), by expected value.
    grade = listed["items"][0]["grade"]
    page.get_by_label("Grade").select_option(grade)
    page.get_by_label("Sort by").select_option("expected_value")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"**grade={grade}**")
    filtered = api(web_server, f"/api/v1/leads/prioritized?limit=25&grade={grade}&order_by=expected_value")
    shown = page.locator("tr[data-lead]").evaluate_all("rows => rows.map(r => r.dataset.lead)")
    assert shown == [item["lead_id"] for item in filtered["items"]]
    assert set(page.locator("tr[data-lead] .grade").all_inner_texts()) == {grade}
    shot(page, "leads-filtered")

    # Open the first lead: its score and reasons are the API's for it (its kept score).
    first = filtered["items"][0]
    page.get_by_role("link", name=first["lead_id"], exact=True).click()
    page.wait_for_url(f"**/app/leads/{first['lead_id']}")
    scored = api(web_server, f"/api/v1/leads/{first['lead_id']}/score")
    assert scored["probability"] == first["probability"]
    assert page.locator("#probability").inner_text() == fmt_percent(first["probability"], "en")
    assert page.locator("#grade").inner_text() == scored["grade"]
    assert page.locator("#reasons-up li").all_inner_texts() == scored["reasons_up"]
    assert page.locator("#reasons-down li").all_inner_texts() == scored["reasons_down"]
    assert page.locator("svg.chart").count() == 1 and page.locator("table.timeline tbody tr").count() > 0
    shot(page, "lead")

    # Switch to Spanish: the same lead, its words and numbers in Spanish, remembered on the next page.
    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Change").click()
    page.wait_for_url(f"**/app/leads/{first['lead_id']}")
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("#probability").inner_text() == fmt_percent(first["probability"], "es")
    spanish = api(web_server, f"/api/v1/leads/{first['lead_id']}/score?lang=es")
    assert spanish["probability"] == scored["probability"]
    assert page.locator("#reasons-up li").all_inner_texts() == spanish["reasons_up"]
    assert page.locator("#reasons-down li").all_inner_texts() == spanish["reasons_down"]
    assert page.get_by_role("heading", name="Historial").count() == 1
    shot(page, "lead-es")
    page.goto("/app/leads")
    assert page.get_by_role("heading", level=1).inner_text() == "Oportunidades de hoy"

    # The other pages, in Spanish now; then sign out.
    for path in PAGES[1:]:
        page.goto(path)
        assert page.locator("h1").count() == 1
        shot(page, path.rsplit("/", 1)[1] + "-es")
    page.get_by_role("button", name="Cerrar sesión").click()
    page.wait_for_url("**/app/sign-in")
    page.goto("/app/leads")
    assert "/app/sign-in" in page.url


def test_the_browsers_language_is_the_apps_until_switched(open_page):
    page = open_page(locale="es-ES")
    page.goto("/app/sign-in")
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.get_by_role("heading", level=1).inner_text() == "Iniciar sesión"


def test_every_field_is_labelled_and_the_keyboard_reaches_everything(open_page, web_server):
    page = open_page()
    sign_in(page)
    lead_id = api(web_server, "/api/v1/leads/prioritized?limit=1")["items"][0]["lead_id"]
    for path in [*PAGES, f"/app/leads/{lead_id}", UNKNOWN_LEAD]:
        page.goto(path)
        assert page.locator("html").get_attribute("lang") == "en"
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"""
        )
        assert unlabelled == [], (path, unlabelled)
        images = page.evaluate(
            "() => [...document.querySelectorAll('svg[role=img]')].filter(s => !s.querySelector('title')).length"
        )
        assert images == 0

    page.goto("/app/leads")
    page.keyboard.press("Tab")
    ring = page.evaluate(
        "() => [document.activeElement.className, getComputedStyle(document.activeElement).outlineStyle]"
    )
    assert ring == ["skip", "solid"]  # the keyboard's focus is seen
    page.goto("/app/leads")
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()"))
    assert reached[0] == "Skip to content"
    for control in ["lang-switch", "f-owner", "f-stage", "f-grade", "f-source", "f-order", "f-follow", "Apply"]:
        assert control in reached, (control, reached)
    first_lead = page.locator("tr[data-lead]").first.get_attribute("data-lead")
    assert first_lead in reached  # the list's links are in the tab order
    page.goto("/app/leads")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link takes the keyboard past the menu
    assert page.evaluate("() => document.activeElement.id") == "main"


def test_a_phone_never_scrolls_sideways(open_page, web_server):
    page = open_page(width=375, height=812)
    sign_in(page)
    lead_id = api(web_server, "/api/v1/leads/prioritized?limit=1")["items"][0]["lead_id"]
    for path in [*PAGES, f"/app/leads/{lead_id}", UNKNOWN_LEAD]:
        page.goto(path)
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (path, width)
    page.goto("/app/leads")
    shot(page, "leads-phone", full_page=False)  # what the phone shows first; the rest is the same cards
    page.goto(f"/app/leads/{lead_id}")
    shot(page, "lead-phone", full_page=False)


def test_an_unknown_lead_is_a_page_in_the_readers_language(open_page):
    page = open_page(locale="es-ES")
    page.goto("/app/sign-in")
    page.get_by_label("Clave de API").fill("read-key")
    page.get_by_role("button", name="Iniciar sesión").click()
    page.wait_for_url("**/app/leads")
    answer = page.goto(UNKNOWN_LEAD)
    assert answer.status == 404 and answer.headers["content-type"].startswith("text/html")
    assert page.get_by_role("heading", level=1).inner_text() == "Página no encontrada"
    assert page.locator("#error-detail").inner_text() == "Ninguna oportunidad con ese identificador."
    page.get_by_role("link", name="Volver a las oportunidades de hoy").click()
    page.wait_for_url("**/app/leads")
    page.goto(UNKNOWN_LEAD)
    shot(page, "not-found-es")
