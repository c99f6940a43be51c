"""API keys with scopes.

A request carries its key in the ``X-API-Key`` header (declared with FastAPI's ``APIKeyHeader``, so the
Authorize button of ``/docs`` takes it). Keys and the key ring that checks them are in
:mod:`leadscore.serving.keys`.

No key → 401; an unknown key → 401; a key without the route's scope → 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from leadscore.serving.keys import KeyRing, Principal
from leadscore.settings import SCOPES

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="APIKey",
    description="An API key with the scope the route needs (`score`, `ingest` or `read`). "
    "Create one with `leadscore keys create --scope ingest --scope read`.",
    auto_error=False,
)


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
        ring: KeyRing = request.app.state.keyring
        challenge = {"WWW-Authenticate": f'APIKey header="{API_KEY_HEADER}"'}
        if not api_key:
            hint = "" if ring.entries else " (this server has no keys yet: create one with `leadscore keys create`)"
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail=f"missing API key: send it in the {API_KEY_HEADER} header; this route needs the "
                f"{self.scope!r} scope{hint}",
                headers=challenge,
            )
        principal = ring.authenticate(api_key)
        if principal is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="invalid API key", headers=challenge)
        if self.scope not in principal.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this API key lacks the {self.scope!r} scope (it has: {sorted(principal.scopes)})",
            )
        request.state.principal = principal
        return principal
