"""API keys with scopes.

A request carries its key in the ``X-API-Key`` header (declared with FastAPI's ``APIKeyHeader``, so the
Authorize button of ``/docs`` takes it). Keys come from the settings and from the keys file; they are kept only
as SHA-256 digests, compared in constant time with :func:`hmac.compare_digest`, and never logged: a key is
identified in logs by its name or by a short fingerprint of its digest.

No key → 401; an unknown key → 401; a key without the route's scope → 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from leadscore.settings import HASHED_KEY_PREFIX, SCOPES, Settings

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="APIKey",
    description="An API key with the scope the route needs (`score`, `ingest` or `read`). "
    "Create one with `leadscore keys create --scope ingest --scope read`.",
    auto_error=False,
)


def digest(key: str) -> bytes:
    """The SHA-256 digest of a key, as stored and compared."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def new_key() -> str:
    """A fresh random API key (URL-safe, 256 bits).

    Examples
    --------
    >>> len(new_key()) >= 40
    True
    """
    return "lsk_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a printable name for logs (never the key) and the key's scopes."""

    name: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class KeyRing:
    """The accepted keys, as digests with their scopes."""

    entries: tuple[tuple[bytes, Principal], ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Keys from ``settings.api_keys`` and the keys file (plain keys or ``sha256:<hex>`` digests).

        Examples
        --------
        >>> ring = KeyRing.from_settings(Settings(api_keys={"k1": ["read"]}, data_dir="/nonexistent"))
        >>> sorted(ring.authenticate("k1").scopes), ring.authenticate("nope")
        (['read'], None)
        """
        entries = []
        for key, scopes in settings.all_api_keys().items():
            if key.startswith(HASHED_KEY_PREFIX):
                try:
                    stored = bytes.fromhex(key[len(HASHED_KEY_PREFIX) :])
                except ValueError:
                    raise ValueError("a hashed API key must be 'sha256:' followed by 64 hex digits") from None
                if len(stored) != 32:
                    raise ValueError("a hashed API key must be 'sha256:' followed by 64 hex digits")
            else:
                stored = digest(key)
            entries.append((stored, Principal(f"key-{stored.hex()[:8]}", frozenset(scopes))))
        return cls(tuple(entries))

    def authenticate(self, key: str) -> Principal | None:
        """The principal of ``key``, or None. Every stored digest is compared, in constant time each."""
        presented = digest(key)
        found = None
        for stored, principal in self.entries:
            if hmac.compare_digest(presented, stored):
                found = principal
        return found


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
