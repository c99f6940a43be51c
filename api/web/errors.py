"""The web app's error pages: under ``/app`` an error is a page in the reader's language, with its status code.

An unknown lead or path (404), a value the address cannot hold (422, naming the field), a method a path does not
take (405), no model to score with (503) or a bug (500, with the reference logged beside the traceback) is
answered with ``error.html``: the menu when signed in, what went wrong, and the way back to today's leads. Outside
``/app`` each handler hands the error to the one the API registered before it, so the API keeps its JSON bodies.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from leadscore.api.champion import NoModelError
from leadscore.api.errors import RequestProblem
from leadscore.api.web.headers import HEADERS as SECURITY_HEADERS
from leadscore.api.web.render import PREFIX, SignInRequired, current_session, language, page

log = logging.getLogger("leadscore.api")

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

#: What each status says to a reader (English; Spanish in :data:`leadscore.api.web.i18n.SPANISH_UI`).
HEADINGS: dict[int, str] = {
    400: "This request could not be read.",
    404: "Page not found",
    405: "This page cannot do that.",
    409: "This cannot be shown now.",
    422: "Some values in the address are not valid.",
    503: "The service cannot answer now: try again in a moment.",
    500: "Something went wrong on our side.",
}


def in_app(request: Request) -> bool:
    """True for the web app's paths (``/app`` and below), whose errors are pages."""
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


async def error_page(
    request: Request,
    status_code: int,
    *,
    detail: str | None = None,
    fields: list[str] | None = None,
    reference: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``error.html`` for ``status_code`` in the reader's language (``detail`` is an English text of the app's)."""
    try:
        viewer = await current_session(request)
    except SignInRequired:
        viewer = None
    response = page(
        request,
        "error.html",
        language(request),
        status_code,
        viewer=viewer,
        heading=HEADINGS.get(status_code, HEADINGS[500] if status_code >= 500 else HEADINGS[400]),
        detail=detail,
        fields=fields or [],
        reference=reference,
        status=status_code,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    # A 500 is answered outside the middleware that adds the security headers: they are set here for every page.
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name.decode(), value.decode())
    response.headers.setdefault("cache-control", "no-store")
    return response


def _field(location: tuple | list) -> str:
    """The field a validation problem is about: the last name in its ``loc`` (``["query", "page"]`` → page)."""
    names = [str(part) for part in location if isinstance(part, str) and part not in ("query", "path", "body")]
    return names[-1] if names else "?"


async def _http_page(request: Request, exc: StarletteHTTPException) -> Response:
    # Only the app's own words are shown as the detail (an English text the app raised, or none): a framework's
    # "Not Found" says nothing more than the heading.
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail in DETAILS else None
    return await error_page(request, exc.status_code, detail=detail, headers=getattr(exc, "headers", None))


async def _validation_page(request: Request, exc: RequestValidationError) -> Response:
    fields = sorted({_field(error.get("loc", ())) for error in exc.errors()})
    return await error_page(request, 422, fields=fields)


async def _problem_page(request: Request, exc: RequestProblem) -> Response:
    return await error_page(request, 422, fields=[_field(exc.loc)])


async def _no_model_page(request: Request, exc: NoModelError) -> Response:
    return await error_page(request, 503, detail="No model is loaded.", headers={"Retry-After": "30"})


async def _unexpected_page(request: Request, exc: Exception) -> Response:
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
    return await error_page(request, 500, reference=reference)


#: The details a page may show under its heading (texts the web app raises with an HTTPException).
DETAILS: frozenset[str] = frozenset({"No lead with that id.", "No model is loaded."})


def _pages_in_app(previous: Handler, make_page: Callable[[Request, Any], Awaitable[Response]]) -> Handler:
    async def handler(request: Request, exc: Any) -> Response:
        if in_app(request):
            return await make_page(request, exc)
        answer = previous(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return handler


def install_error_pages(app: FastAPI) -> None:
    """Answer errors under ``/app`` with pages; every other path keeps the handler registered before (FastAPI's
    own for HTTP and validation errors, the API's JSON ones of :mod:`leadscore.api.errors` for the rest)."""
    pages: list[tuple[type[Exception], Callable[[Request, Any], Awaitable[Response]]]] = [
        (StarletteHTTPException, _http_page),
        (RequestValidationError, _validation_page),
        (RequestProblem, _problem_page),
        (NoModelError, _no_model_page),
        (Exception, _unexpected_page),
    ]
    for exception, make_page in pages:
        previous = app.exception_handlers.get(exception) or _reraise
        app.add_exception_handler(exception, _pages_in_app(previous, make_page))


def _reraise(request: Request, exc: Exception) -> Response:
    raise exc  # no handler outside the app: the error goes on as if the app's had not been there
