"""Rendering the web app's pages: the Jinja2 templates, what every page is given, and who is signed in.

Every page gets ``lang`` and the helpers bound to it (``t`` for the app's words, ``num``, ``pct``, ``date``,
``datetime``), the CSRF token of its forms and the signed-in key's name. Jinja2 escapes every value
(``autoescape``); the charts come as :class:`markupsafe.Markup` from :mod:`leadscore.api.web.charts`.
"""

from __future__ import annotations

import secrets
from functools import partial
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from leadscore.api.web import i18n
from leadscore.api.web.session import (
    COOKIE_PATH,
    CSRF_COOKIE,
    SESSION_COOKIE,
    SessionSigner,
    WebSession,
)

PREFIX = "/app"
TEMPLATES = Jinja2Templates(directory=str(files("leadscore.api.web") / "templates"))

#: The pages of the menu: (path, English name).
MENU: tuple[tuple[str, str], ...] = (
    ("/app/leads", "Today's leads"),
    ("/app/team", "Team performance"),
    ("/app/goals", "Goals"),
    ("/app/funnel", "Funnel"),
    ("/app/model", "Model"),
)


class SignInRequired(Exception):
    """Raised by :func:`current_session` when nobody is signed in; answered with a redirect to sign-in."""

    def __init__(self, next_path: str):
        self.next_path = next_path


def signer(request: Request) -> SessionSigner:
    return request.app.state.web_signer


def language(request: Request) -> str:
    """The reader's language (cookie, else ``Accept-Language``, else English)."""
    return i18n.choose_language(request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"))


async def current_session(request: Request) -> WebSession:
    """Who is signed in; :class:`SignInRequired` when nobody is (no cookie, a forged or expired one, or a key
    that is no longer in the key ring)."""
    session = signer(request).read(request.cookies.get(SESSION_COOKIE))
    names = {principal.name for _, principal in request.app.state.keyring.entries if "read" in principal.scopes}
    if session is None or session.name not in names:
        raise SignInRequired(safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else "")))
    return session


Viewer = Annotated[WebSession, Depends(current_session)]
Lang = Annotated[str, Depends(language)]


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path inside the app only (never another site, ``//host`` included).

    Examples
    --------
    >>> safe_next("/app/leads?grade=A"), safe_next("https://evil.example"), safe_next("//evil.example/app")
    ('/app/leads?grade=A', '/app/leads', '/app/leads')
    """
    if not path or not path.startswith(PREFIX + "/") or path.startswith("//") or "\\" in path:
        return PREFIX + "/leads"
    return path


def sign_in_url(next_path: str) -> str:
    return f"{PREFIX}/sign-in?next={quote(safe_next(next_path), safe='/')}"


def page(request: Request, template: str, lang: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` for the reader, with the helpers every page uses; sets the CSRF cookie when new."""
    seed = request.cookies.get(CSRF_COOKIE)
    new_seed = None
    if not seed or len(seed) > 64:
        seed = new_seed = secrets.token_urlsafe(24)
    helpers = {
        "lang": lang,
        "t": partial(i18n.translate, lang=lang),
        "num": partial(_with_lang, i18n.fmt_number, lang),
        "pct": partial(_with_lang, i18n.fmt_percent, lang),
        "date": partial(i18n.fmt_date, lang=lang),
        "datetime": partial(i18n.fmt_datetime, lang=lang),
        "event": partial(i18n.event_label, lang=lang),
        "csrf_token": signer(request).csrf_token(seed),
        "languages": i18n.LANGUAGE_NAMES,
        "menu": MENU,
        "here": request.url.path,
        "here_with_query": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    response = TEMPLATES.TemplateResponse(request, template, {**helpers, **context}, status_code=status_code)
    if new_seed is not None:
        set_cookie(request, response, CSRF_COOKIE, new_seed, max_age=None)
    return response


def _with_lang(function, lang: str, value: object, digits: int | None = None) -> str:
    return function(value, lang) if digits is None else function(value, lang, digits)


def set_cookie(request: Request, response, name: str, value: str, *, max_age: int | None) -> None:
    """A cookie for the app's pages only: HttpOnly, SameSite=Strict, Secure over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
