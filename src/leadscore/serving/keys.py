"""API keys: random keys, their SHA-256 digests, and the key ring that authenticates a presented key.

Keys come from the settings and from the keys file; they are kept only as SHA-256 digests, compared in constant
time with :func:`hmac.compare_digest`, and never logged: a key is identified in logs by its name or by a short
fingerprint of its digest. The service (``leadscore.api.security``) and the CLI (``leadscore keys``) share them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from leadscore.settings import HASHED_KEY_PREFIX, Settings


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
