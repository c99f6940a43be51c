"""Signing in and out, and the language switch: the web app's only forms that change anything.

Each checks its CSRF token first (:mod:`leadscore.api.web.session`); sign-in accepts an API key with the ``read``
scope and answers every failure with the same words, limited per client address.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse

from leadscore.api.web import i18n
from leadscore.api.web.render import PREFIX, Lang, page, safe_next, set_cookie, signer
from leadscore.api.web.session import CSRF_COOKIE, SESSION_COOKIE, SESSION_HOURS, WebSession
from leadscore.features.phrases import LANGUAGES

router = APIRouter(prefix=PREFIX, include_in_schema=False)

FAILED = "That key cannot sign in: it is unknown or lacks the read scope."
THROTTLED = "Too many failed sign-ins from here: wait a minute and try again."
EXPIRED_FORM = "The form had expired: please try again."
LANG_COOKIE_DAYS = 365

# Form fields are short: a key is ~50 characters, a path a few hundred.
KeyField = Annotated[str, Form(max_length=500)]
TokenField = Annotated[str, Form(alias="csrf_token", max_length=200)]
NextField = Annotated[str, Form(alias="next", max_length=2000)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _csrf_ok(request: Request, token: str) -> bool:
    return signer(request).csrf_matches(request.cookies.get(CSRF_COOKIE), token)


def _redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=status.HTTP_303_SEE_OTHER)


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def home() -> RedirectResponse:
    return _redirect(f"{PREFIX}/leads")


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, lang: Lang, next: str = PREFIX + "/leads") -> HTMLResponse:
    return page(request, "sign_in.html", lang, next=safe_next(next), error=None)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request, lang: Lang, api_key: KeyField, token: TokenField, next_path: NextField = ""
) -> HTMLResponse:
    """Sign in with an API key that has the ``read`` scope; the session cookie never holds the key."""
    throttle = request.app.state.web_throttle
    client = _client(request)
    if not _csrf_ok(request, token):
        return page(
            request, "sign_in.html", lang, status.HTTP_403_FORBIDDEN, next=safe_next(next_path), error=EXPIRED_FORM
        )
    if throttle.blocked(client):
        return page(
            request, "sign_in.html", lang, status.HTTP_429_TOO_MANY_REQUESTS, next=safe_next(next_path), error=THROTTLED
        )
    principal = request.app.state.keyring.authenticate(api_key.strip())
    if principal is None or "read" not in principal.scopes:
        throttle.failed(client)
        return page(
            request, "sign_in.html", lang, status.HTTP_401_UNAUTHORIZED, next=safe_next(next_path), error=FAILED
        )
    throttle.succeeded(client)
    response = _redirect(safe_next(next_path))
    cookie = signer(request).sign(WebSession(principal.name, secrets.token_urlsafe(16)))
    set_cookie(request, response, SESSION_COOKIE, cookie, max_age=SESSION_HOURS * 3600)
    set_cookie(request, response, CSRF_COOKIE, signer(request).new_csrf_seed(), max_age=None)  # a fresh token
    return response


@router.post("/sign-out")
def sign_out(request: Request, token: TokenField) -> RedirectResponse:
    response = _redirect(f"{PREFIX}/sign-in")
    if _csrf_ok(request, token):
        response.delete_cookie(SESSION_COOKIE, path="/app", httponly=True, samesite="strict")
    return response


@router.post("/language")
def switch_language(
    request: Request,
    token: TokenField,
    lang_choice: Annotated[str, Form(alias="lang", max_length=10)],
    next_path: NextField = "",
) -> RedirectResponse:
    """Remember the reader's language in a cookie (a year), then go back to the page they were on."""
    response = _redirect(safe_next(next_path))
    if _csrf_ok(request, token) and lang_choice in LANGUAGES:
        set_cookie(request, response, i18n.LANG_COOKIE, lang_choice, max_age=LANG_COOKIE_DAYS * 86400)
    return response
