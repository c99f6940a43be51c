"""The sales manager's web app, served by the API's own process under ``/app``.

Server-rendered pages (Jinja2 templates next to the routes that fill them, a small stylesheet, charts drawn as
SVG on the server, no JavaScript), over the same library calls as the API's routes:

- ``auth``: sign-in with an API key that has the ``read`` scope, sign-out, the language switch;
- ``leads``: today's prioritised list and a lead's page;
- ``analytics_pages``: team performance, goals, the funnel;
- ``model_page``: the model in use and the promotion gate's decisions;
- ``errors``: the error pages (404, 422, ...) in the reader's language, for ``/app`` only.

:func:`install` adds it to an app: the routes, the static files and the security headers every page sends.
"""

from __future__ import annotations

import logging
import secrets
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from leadscore.api.cache import ScoredTableCache
from leadscore.api.web import analytics_pages, auth, leads, model_page
from leadscore.api.web.errors import install_error_pages
from leadscore.api.web.headers import SecurityHeadersMiddleware
from leadscore.api.web.model_page import MODEL_PAGE_CACHE_SECONDS
from leadscore.api.web.render import PREFIX, SignInRequired, sign_in_url
from leadscore.api.web.session import SessionSigner, SignInThrottle
from leadscore.settings import Settings

log = logging.getLogger("leadscore.api")


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the web app from ``app`` under ``/app``."""
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    if secret is None:
        secret = secrets.token_urlsafe(32)
        log.info("web app: sessions signed with a random secret (set LEADSCORE_SESSION_SECRET to share them)")
    app.state.web_signer = SessionSigner(secret)
    app.state.web_throttle = SignInThrottle()
    app.state.web_cache = ScoredTableCache(MODEL_PAGE_CACHE_SECONDS)  # the model page's slow figures
    app.state.web_forecasts = analytics_pages.ForecastMemo()  # the goals page's forecast, per scored table
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(files("leadscore.api.web") / "static")), name="web-static")
    for module in (auth, leads, analytics_pages, model_page):
        app.include_router(module.router)
    app.add_middleware(SecurityHeadersMiddleware, prefix=PREFIX)
    install_error_pages(app)  # after the API's handlers, which it keeps for every path outside /app

    @app.exception_handler(SignInRequired)
    async def _to_sign_in(request: Request, exc: SignInRequired) -> RedirectResponse:
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)
