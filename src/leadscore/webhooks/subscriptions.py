"""Webhook subscriptions: checked, created with a secret shown once, listed, deleted.

The library behind ``/api/v1/webhooks`` and ``leadscore webhooks``. A subscription names a URL (checked against
the SSRF guard, :mod:`leadscore.webhooks.targets`), the event kinds it wants (:data:`EVENT_KINDS`) and a secret
that signs every payload (generated unless given; returned by :func:`create` only, never by a read).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from leadscore.store import outbox
from leadscore.store import webhook_subscriptions as stored
from leadscore.store.engine import run_in_write_transaction
from leadscore.store.outbox import EVENT_KINDS
from leadscore.webhooks.targets import Resolver, TargetPolicy, TargetRefused, resolve, system_resolver

#: Secrets are at least this long (a generated one is ``whsec_`` and 43 URL-safe characters).
MIN_SECRET_LENGTH = 24
MAX_SECRET_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 500


@dataclass(frozen=True)
class Problem:
    """A value of a new subscription that cannot be used: the field and what is wrong."""

    field: str
    message: str


class SubscriptionError(ValueError):
    """A new subscription's values cannot be used; ``problems`` names each field."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in self.problems))


def new_secret() -> str:
    """A random signing secret.

    Examples
    --------
    >>> s = new_secret()
    >>> s.startswith("whsec_"), len(s) > 40
    (True, True)
    """
    return "whsec_" + secrets.token_urlsafe(32)


def check(
    url: str,
    kinds: Sequence[str],
    *,
    secret: str | None = None,
    description: str | None = None,
    policy: TargetPolicy,
    resolver: Resolver = system_resolver,
) -> None:
    """Raise :class:`SubscriptionError` naming every field of a new subscription that cannot be used."""
    problems = []
    try:
        resolve(url, policy, resolver)
    except TargetRefused as err:
        problems.append(Problem("url", str(err)))
    if not kinds:
        problems.append(Problem("events", f"name at least one event kind: {sorted(EVENT_KINDS)}"))
    unknown = sorted(set(kinds) - set(EVENT_KINDS))
    if unknown:
        problems.append(Problem("events", f"unknown event kind(s) {unknown}; kinds: {sorted(EVENT_KINDS)}"))
    if secret is not None and not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        problems.append(
            Problem("secret", f"must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters (leave it out for one)")
        )
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        problems.append(Problem("description", f"longer than {MAX_DESCRIPTION_LENGTH} characters"))
    if problems:
        raise SubscriptionError(problems)


def create(
    engine: Engine,
    url: str,
    kinds: Sequence[str],
    *,
    secret: str | None = None,
    description: str | None = None,
    policy: TargetPolicy,
    resolver: Resolver = system_resolver,
) -> dict[str, Any]:
    """Check and store a subscription; returns it *with its secret* (the only time it is shown).

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.store import create_engine, upgrade_database
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/leadscore.db"
    >>> _ = upgrade_database(url)
    >>> sub = create(create_engine(url), "http://127.0.0.1:9/hook", ["model.promoted"],
    ...              policy=TargetPolicy(allow_private=True))
    >>> sub["id"], sub["kinds"], sub["secret"].startswith("whsec_")
    (1, ['model.promoted'], True)
    """
    kinds = list(dict.fromkeys(kinds))
    check(url, kinds, secret=secret, description=description, policy=policy, resolver=resolver)
    secret = secret or new_secret()
    now = datetime.now(UTC)
    created = run_in_write_transaction(
        engine,
        lambda conn: stored.create(conn, url=url, secret=secret, kinds=kinds, description=description, now=now),
    )
    return {**created, "secret": secret}


def ping(engine: Engine, subscription_id: int) -> str | None:
    """Send a ``webhook.ping`` event to one subscription; its event id (None: no such subscription)."""

    def work(conn) -> str | None:
        if stored.get(conn, subscription_id) is None:
            return None
        payload = {"subscription_id": subscription_id, "message": "a test event from leadscore"}
        return outbox.enqueue(conn, "webhook.ping", payload, subscription_id=subscription_id)

    return run_in_write_transaction(engine, work)
