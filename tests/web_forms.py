"""Filling the web app's forms from a test client: the CSRF token of a page, and signing in."""

from __future__ import annotations

from fastapi.testclient import TestClient


def csrf_token(html: str) -> str:
    """The CSRF token of the first form of a page."""
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def sign_in(client: TestClient, key: str = "read-key"):
    """Sign ``client`` in with ``key`` through the form; returns the answer to the form."""
    token = csrf_token(client.get("/app/sign-in").text)
    return client.post(
        "/app/sign-in", data={"api_key": key, "csrf_token": token, "next": "/app/leads"}, follow_redirects=False
    )
