"""API keys with scopes, checked first.

A request carries its key in the ``X-API-Key`` header (declared with FastAPI's ``APIKeyHeader``, so the
Authorize button of ``/docs`` takes it). Keys and the key ring that checks them are in
:mod:`leadscore.serving.keys`.

No key → 401; an unknown key → 401; a key without the route's scope → 403.

The check runs twice over, cheaply: :class:`KeyGate`, the outermost middleware, answers 401 and 403 from the
headers alone, before anything reads the query string or the body (a request without a valid key costs the
server one hash, whatever it carries); :class:`RequireScope`, each route's dependency, documents the scope in the
OpenAPI description and hands the route its caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Security, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from leadscore.api.limits import send_json
from leadscore.serving.keys import KeyRing, Principal
from leadscore.settings import SCOPES

API_KEY_HEADER = "X-API-Key"
_HEADER = API_KEY_HEADER.lower().encode("latin-1")

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="APIKey",
    description="An API key with the scope the route needs (`score`, `ingest` or `read`). "
    "Create one with `leadscore keys create --scope ingest --scope read`.",
    auto_error=False,
)


def admit(ring: KeyRing | None, api_key: str | None, scope: str) -> Principal:
    """The caller presenting ``api_key`` to a route that needs ``scope``; an HTTPException (401 or 403) saying
    what is missing otherwise.

    Examples
    --------
    >>> from leadscore.settings import Settings
    >>> ring = KeyRing.from_settings(Settings(api_keys={"k1": ["read"]}, data_dir="/nonexistent"))
    >>> sorted(admit(ring, "k1", "read").scopes)
    ['read']
    >>> admit(ring, "k1", "ingest")
    Traceback (most recent call last):
    ...
    fastapi.exceptions.HTTPException: 403: this API key lacks the 'ingest' scope (it has: ['read'])
    """
    challenge = {"WWW-Authenticate": f'APIKey header="{API_KEY_HEADER}"'}
    if not api_key:
        hint = (
            "" if ring and ring.entries else " (this server has no keys yet: create one with `leadscore keys create`)"
        )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing API key: send it in the {API_KEY_HEADER} header; this route needs the {scope!r} scope"
            f"{hint}",
            headers=challenge,
        )
    principal = ring.authenticate(api_key) if ring else None
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="invalid API key", headers=challenge)
    if scope not in principal.scopes:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this API key lacks the {scope!r} scope (it has: {sorted(principal.scopes)})",
        )
    return principal


class RequireScope:
    """A dependency that admits a request whose API key carries ``scope``.

    Examples
    --------
    >>> RequireScope("ingest").scope
    'ingest'
    """

    def __init__(self, scope: str):
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; scopes: {list(SCOPES)}")
        self.scope = scope

    async def __call__(
        self, request: Request, api_key: Annotated[str | None, Security(api_key_header)] = None
    ) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)  # admitted by the KeyGate
        if principal is None or self.scope not in principal.scopes:
            principal = admit(request.app.state.keyring, api_key, self.scope)
            request.state.principal = principal
        return principal


def required_scope(route: BaseRoute) -> str | None:
    """The scope a route's :class:`RequireScope` dependency asks for; None for a route that needs no key."""
    if not isinstance(route, APIRoute):
        return None
    return next((d.call.scope for d in _dependants(route.dependant) if isinstance(d.call, RequireScope)), None)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


@dataclass(frozen=True)
class ScopedRoute:
    """A route that needs an API key: its path as a pattern, its methods and the scope it needs."""

    path: re.Pattern[str]
    methods: frozenset[str]
    scope: str


def scoped_routes(prefix: str, routers: Sequence[APIRouter]) -> list[ScopedRoute]:
    """The routes of ``routers`` (included under ``prefix``) that need a key, for :class:`KeyGate`.

    Examples
    --------
    >>> from leadscore.api.routes import model
    >>> sorted((sorted(r.methods), r.scope) for r in scoped_routes("/api/v1", [model.router]))
    [(['GET'], 'read'), (['POST'], 'score')]
    """
    found = []
    for router in routers:
        for route in router.routes:
            needed = required_scope(route)
            if needed is not None:
                pattern = compile_path(prefix + route.path)[0]  # type: ignore[attr-defined]
                found.append(ScopedRoute(pattern, frozenset(route.methods), needed))  # type: ignore[attr-defined]
    return found


class KeyGate:
    """Pure ASGI middleware answering 401 and 403 before anything reads a request's query string or body.

    ``routes`` are the routes that need a key (:func:`scoped_routes`), matched on the request's path and method
    as the router would; a request to one of them is let through only with an ``X-API-Key`` header carrying a
    key with the route's scope (:func:`admit`). The caller is left in the request's state for
    :class:`RequireScope`; other paths pass untouched.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[ScopedRoute]):
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (needed := self._scope_needed(scope)) is not None:
            api_key = next((value.decode("latin-1") for name, value in scope["headers"] if name == _HEADER), None)
            try:
                principal = admit(getattr(scope["app"].state, "keyring", None), api_key, needed)
            except HTTPException as refused:
                await send_json(send, refused.status_code, {"detail": refused.detail}, refused.headers)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _scope_needed(self, scope: Scope) -> str | None:
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # behind a proxy's prefix, routes are matched without it
            path = path[len(root) :]
        method = scope["method"]
        return next((r.scope for r in self.routes if method in r.methods and r.path.match(path)), None)
