"""Signing in to the web app: a signed session cookie, CSRF tokens for forms, and a brake on failed sign-ins.

- **Session.** Signing in takes an API key with the ``read`` scope (checked by the same key ring as the API,
  :mod:`leadscore.serving.keys`). The cookie then holds the key's printable name and a random session id, signed
  with itsdangerous (HMAC-SHA256) and valid for ``SESSION_HOURS``: never the key itself. It is ``HttpOnly``,
  ``SameSite=Strict``, ``Path=/app`` and ``Secure`` when the request came over https. A session whose key left
  the key ring (revoked, service restarted without it) is over.
- **CSRF.** Every form that changes state (sign-in, sign-out, the language switch) carries a token: an HMAC of a
  random value kept in its own ``HttpOnly`` cookie (double submit, signed), checked before the form is acted on.
  ``SameSite=Strict`` already keeps other sites' forms from carrying the cookies; the token is the second lock.
- **Failed sign-ins** say the same thing whatever was wrong (unknown key, or a key without ``read``) and are
  limited per client address: after ``MAX_FAILURES`` within ``FAILURE_WINDOW_S`` the address waits.

The secret is ``LEADSCORE_SESSION_SECRET`` when set (so that several workers and restarts share sessions), else
a random one per process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "ls_session"
CSRF_COOKIE = "ls_csrf"
COOKIE_PATH = "/app"
SESSION_HOURS = 12
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0


@dataclass(frozen=True)
class WebSession:
    """Who is signed in: the key's printable name (``key-1a2b3c4d``), never the key."""

    name: str
    session_id: str


class SessionSigner:
    """Makes and reads the signed session cookie and the CSRF tokens.

    Examples
    --------
    >>> signer = SessionSigner("a secret")
    >>> cookie = signer.sign(WebSession("key-1a2b3c4d", "s1"))
    >>> signer.read(cookie)
    WebSession(name='key-1a2b3c4d', session_id='s1')
    >>> signer.read(cookie + "x") is None
    True
    >>> seed = signer.new_csrf_seed()
    >>> signer.csrf_matches(seed, signer.csrf_token(seed)), signer.csrf_matches(seed, "forged")
    (True, False)
    """

    def __init__(self, secret: str, max_age_s: float = SESSION_HOURS * 3600):
        self._serializer = URLSafeTimedSerializer(secret, salt="leadscore.web.session")
        self._csrf_key = hashlib.sha256(("leadscore.web.csrf:" + secret).encode()).digest()
        self.max_age_s = max_age_s

    def sign(self, session: WebSession) -> str:
        return self._serializer.dumps({"name": session.name, "sid": session.session_id})

    def read(self, cookie: str | None) -> WebSession | None:
        """The session in ``cookie``, or None if absent, forged or expired."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("sid"), str):
            return None
        return WebSession(data["name"], data["sid"])

    @staticmethod
    def new_csrf_seed() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, seed: str) -> str:
        """The token a form carries for the CSRF cookie ``seed``."""
        return hmac.new(self._csrf_key, seed.encode(), hashlib.sha256).hexdigest()

    def csrf_matches(self, seed: str | None, token: str | None) -> bool:
        if not seed or not token:
            return False
        return hmac.compare_digest(self.csrf_token(seed), token)


class SignInThrottle:
    """Counts failed sign-ins per client address; an address with ``max_failures`` in the last ``window_s``
    seconds is refused until the oldest of them ages out.

    Examples
    --------
    >>> throttle = SignInThrottle(max_failures=2, window_s=60)
    >>> throttle.failed("1.2.3.4", now=0); throttle.failed("1.2.3.4", now=1)
    >>> throttle.blocked("1.2.3.4", now=2), throttle.blocked("1.2.3.4", now=61), throttle.blocked("5.6.7.8", now=2)
    (True, False, False)
    """

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S, max_clients: int = 10_000):
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return len(self._recent(client, now)) >= self.max_failures

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) >= self.max_clients:  # bounded memory: forget everyone's old failures
                self._failures = {c: t for c, t in self._failures.items() if self._recent(c, now)}
            times = self._recent(client, now)
            times.append(now)
            self._failures[client] = times

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
