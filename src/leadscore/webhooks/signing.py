"""Signing webhook payloads, and verifying them on the receiving side.

Each delivery carries ``X-Leadscore-Signature: t=<unix seconds>,v1=<hex>``, where the hex is the HMAC-SHA256,
keyed with the subscription's secret, of ``"<t>.<body>"`` (the raw body bytes). The timestamp is the time of
*that attempt*, so a retry hours later is still fresh; a receiver refuses a timestamp outside its replay window
(:data:`REPLAY_WINDOW_S`, five minutes) and de-duplicates on ``X-Leadscore-Event-Id``. Several ``v1`` values may
appear (one per secret, while a secret is being rotated); one matching is enough.

A receiver needs only this module (standard library only)::

    from leadscore.webhooks.signing import verify, InvalidSignature
    try:
        verify(request_body, request.headers["X-Leadscore-Signature"], secret)
    except InvalidSignature:
        return 400
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Leadscore-Signature"
#: How old (or how far in the future) a signature's timestamp may be, by default.
REPLAY_WINDOW_S = 300.0


class InvalidSignature(ValueError):
    """A payload whose signature is missing, malformed, wrong or outside the replay window."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``.

    Examples
    --------
    >>> signature("whsec_test", 1700000000, b'{"id": "1"}')[:16]
    '202e3aa24daedd03'
    """
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The value of the :data:`SIGNATURE_HEADER` for ``body`` sent now (or at ``timestamp``).

    Examples
    --------
    >>> sign("whsec_test", b"{}", timestamp=1700000000)[:30]
    't=1700000000,v1=35495024f4ef3f'
    """
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    body: bytes, header: str | None, secret: str, *, tolerance_s: float = REPLAY_WINDOW_S, now: float | None = None
) -> int:
    """Check a delivery's signature; return its timestamp, or raise :class:`InvalidSignature` saying why.

    Parameters
    ----------
    body : bytes
        The request body exactly as received (before any JSON parsing).
    header : str
        The :data:`SIGNATURE_HEADER` value.
    secret : str
        The subscription's secret (shown once, when it was created).
    tolerance_s : float
        The replay window: a timestamp further than this from ``now`` is refused.
    now : float, optional
        The time now, in Unix seconds (tests fix it).

    Examples
    --------
    >>> header = sign("whsec_test", b"{}", timestamp=1700000000)
    >>> verify(b"{}", header, "whsec_test", now=1700000060)
    1700000000
    >>> try:
    ...     verify(b"{}", header, "whsec_test", now=1700000600)
    ... except InvalidSignature as err:
    ...     print(err)
    timestamp 1700000000 is 600 s from now, outside the 300 s replay window
    """
    if not header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    timestamp, candidates = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature(f"malformed {SIGNATURE_HEADER} header: expected 't=<unix seconds>,v1=<hex>'")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        raise InvalidSignature(
            f"timestamp {timestamp} is {abs(now - timestamp):.0f} s from now, "
            f"outside the {tolerance_s:.0f} s replay window"
        )
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignature("signature does not match the body and secret")
    return timestamp
