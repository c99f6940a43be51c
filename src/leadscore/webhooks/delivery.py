"""The delivery worker: sends the outbox's events to their subscribers, at least once, in order per lead.

Each step claims a batch of due deliveries in one short write transaction (:func:`leadscore.store.outbox.claim`:
leased, the attempt counted, at most one per lead and subscriber), sends them concurrently, and records the
outcomes as they come, a few per transaction (:func:`~leadscore.store.outbox.mark`). Nothing is held in memory
that the store does not also know: a worker killed mid-delivery leaves leased rows that become claimable again
when the lease runs out, and are sent again. That is the delivery contract:

- **at least once**: an event is retried until a receiver answers 2xx, or dead-lettered after
  ``max_attempts`` (then ``leadscore webhooks redeliver`` or ``POST /api/v1/webhooks/{id}/redeliver``). A
  duplicate happens only when an attempt reached the receiver but its outcome was not recorded: the worker
  was killed (outcomes are recorded ``concurrency`` at a time as they come, so at most ``2 x concurrency - 1``
  per crash), or the answer was lost or came after the timeout. Every copy carries the same
  ``X-Leadscore-Event-Id``, so receivers de-duplicate on it;
- **in order per lead**: a lead's later event is not sent to a subscriber before its earlier one was delivered
  or dead-lettered (``sequence`` in the body increases with every event, so a receiver can also tell);
- **backoff**: attempt *n* fails → the next waits ``min(cap, base × 2^(n-1))``, halved-plus-random (equal jitter),
  so retries of many events spread out;
- **bounded**: each attempt has a connect/write/read timeout and an overall deadline; at most
  ``max_response_bytes`` of the answer are read; redirects are never followed (a 3xx is a failed attempt); the
  target is checked again before each attempt and the connection goes to the checked address
  (:mod:`leadscore.webhooks.targets`).

:class:`DeliveryWorker` runs as a thread of the service (started in the app's lifespan, like the score keeper)
or on its own (``leadscore webhooks deliver``); several workers on one store never send the same delivery at once.
It also runs periodic jobs (the goal check, pruning the log) between batches.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.engine import Engine

import leadscore
from leadscore.store import outbox
from leadscore.store.engine import run_in_write_transaction
from leadscore.webhooks.signing import SIGNATURE_HEADER, sign
from leadscore.webhooks.targets import Resolver, TargetPolicy, TargetRefused, resolve, system_resolver

log = logging.getLogger("leadscore.webhooks")

EVENT_ID_HEADER = "X-Leadscore-Event-Id"
KIND_HEADER = "X-Leadscore-Event"
ATTEMPT_HEADER = "X-Leadscore-Attempt"
#: An attempt lasts at most this many timeouts: connect, write and the first byte of the answer each have one,
#: and reading the answer stops at an overall deadline of three from the start.
ATTEMPT_DEADLINE_TIMEOUTS = 4


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are attempted: retries, timeouts, sizes, concurrency.

    Examples
    --------
    >>> policy = DeliveryPolicy(backoff_s=10, backoff_max_s=3600)
    >>> [policy.backoff_ceiling(n) for n in (1, 2, 3, 12)]
    [10.0, 20.0, 40.0, 3600.0]
    """

    max_attempts: int = 16
    backoff_s: float = 10.0
    backoff_max_s: float = 3600.0
    timeout_s: float = 10.0
    max_response_bytes: int = 64 * 1024
    lease_s: float = 120.0
    batch: int = 16
    concurrency: int = 8

    def __post_init__(self) -> None:
        # A batch must be sent before its lease runs out, or another worker would take rows still queued here.
        rounds = -(-self.batch // self.concurrency)
        longest = rounds * ATTEMPT_DEADLINE_TIMEOUTS * self.timeout_s
        if self.lease_s <= longest:
            raise ValueError(
                f"the lease ({self.lease_s:g} s) must outlast a batch: {rounds} round(s) of attempts of up to "
                f"{ATTEMPT_DEADLINE_TIMEOUTS} x the {self.timeout_s:g} s timeout = {longest:g} s"
            )

    @classmethod
    def from_settings(cls, settings) -> DeliveryPolicy:
        return cls(
            max_attempts=settings.webhooks_max_attempts,
            backoff_s=settings.webhooks_backoff_seconds,
            backoff_max_s=settings.webhooks_backoff_max_seconds,
            timeout_s=settings.webhooks_timeout_seconds,
            lease_s=settings.webhooks_lease_seconds,
            concurrency=settings.webhooks_concurrency,
            batch=2 * settings.webhooks_concurrency,
        )

    def backoff_ceiling(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed attempt, before jitter."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** min(attempts - 1, 60)))

    def retry_delay(self, attempts: int, rng: random.Random) -> float:
        """The wait after the ``attempts``-th failed attempt: half the ceiling plus a random part of the other half."""
        ceiling = self.backoff_ceiling(attempts)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class PeriodicJob:
    """Work the worker does every ``every_s`` seconds between batches (``run(now)``)."""

    name: str
    every_s: float
    run: Callable[[datetime], object]
    #: Seconds after the worker starts before the first run (0: at the first step).
    first_after_s: float = 0.0


def body_of(claimed: outbox.Claimed) -> bytes:
    """The JSON body of an event, the same bytes on every attempt.

    ``{"id", "kind", "sequence", "created_at", "lead_id", "data"}``: ``id`` is the event id (also in the
    ``X-Leadscore-Event-Id`` header), ``sequence`` increases with every event stored, ``data`` is the kind's payload.
    """
    envelope = {
        "id": claimed.event_id,
        "kind": claimed.kind,
        "sequence": claimed.sequence,
        "created_at": claimed.created_at.isoformat(),
        "lead_id": claimed.lead_id,
        "data": claimed.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True, default=str).encode("utf-8")


class DeliveryWorker:
    """Delivers the outbox of the store behind ``engine``.

    Parameters
    ----------
    engine : sqlalchemy.engine.Engine
        The store (migrated).
    policy : DeliveryPolicy
        Retries, timeouts, concurrency.
    targets : TargetPolicy
        Which addresses may be reached (public ones only by default).
    resolver : callable
        ``resolver(host, port)`` -> addresses; the operating system's by default.
    jobs : sequence of PeriodicJob
        Run between batches when due.
    idle_s : float
        How often to look for work when nothing woke the worker.
    clock : callable
        The time now.
    seed : int, optional
        Seeds the jitter (tests).

    Examples
    --------
    >>> worker = DeliveryWorker(engine, targets=TargetPolicy(allow_private=True))  # doctest: +SKIP
    >>> worker.drain()  # deliver everything due now, in this thread  # doctest: +SKIP
    """

    def __init__(
        self,
        engine: Engine,
        *,
        policy: DeliveryPolicy | None = None,
        targets: TargetPolicy | None = None,
        resolver: Resolver = system_resolver,
        jobs: Sequence[PeriodicJob] = (),
        idle_s: float = 1.0,
        clock: Callable[[], datetime] = _now,
        seed: int | None = None,
    ):
        self.engine = engine
        self.policy = policy or DeliveryPolicy()
        self.targets = targets or TargetPolicy()
        self.resolver = resolver
        self.jobs = tuple(jobs)
        self.idle_s = idle_s
        self._clock = clock
        self._rng = random.Random(seed)
        self.name = f"worker-{uuid.uuid4().hex[:12]}"
        self._next_run: dict[str, datetime] = {}
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The last error of the loop itself (the database unreachable, say); '' when all is well.
        self.problem = ""
        #: Attempts made by this worker: delivered, failed (to be retried), dead-lettered.
        self.stats: dict[str, int] = {"delivered": 0, "failed": 0, "dead": 0}

    # ---- the thread

    def start(self) -> None:
        """Run :meth:`step` in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="leadscore-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (the batch in flight finishes and is recorded) and close connections."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.policy.timeout_s * 3 + 30)
            self._thread = None
        self.close()

    def wake(self) -> None:
        """Look for work now (after enqueueing)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Make :meth:`run` return after the batch in flight (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Deliver until :meth:`stop` (the thread's body; ``leadscore webhooks deliver`` calls it directly)."""
        while not self._stop.is_set():
            try:
                done = self.step()
                self.problem = ""
            except Exception as err:  # noqa: BLE001 - the worker must outlive a database hiccup; it retries
                self.problem = f"{type(err).__name__}: {err}"
                log.warning("webhooks: %s", self.problem)
                done = 0
            if not done:
                self._wake.wait(self.idle_s)
                self._wake.clear()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- the work

    def step(self) -> int:
        """Run the periodic jobs that are due, then claim, send and record one batch; return its size."""
        now = self._clock()
        self._run_jobs(now)
        lease_until = now + timedelta(seconds=self.policy.lease_s)
        claimed = run_in_write_transaction(
            self.engine,
            lambda conn: outbox.claim(conn, self.policy.batch, worker=self.name, now=now, lease_until=lease_until),
        )
        if not claimed:
            return 0
        # Outcomes are recorded as they come, a few at a time, so a crash repeats little of what was sent.
        done: list[outbox.Outcome] = []
        for future in as_completed([self._executor().submit(self.send, c) for c in claimed]):
            done.append(future.result())
            if len(done) >= self.policy.concurrency:
                self._record(done)
                done = []
        if done:
            self._record(done)
        return len(claimed)

    def _record(self, outcomes: list[outbox.Outcome]) -> None:
        finished = self._clock()
        run_in_write_transaction(self.engine, lambda conn: outbox.mark(conn, outcomes, worker=self.name, now=finished))
        for out in outcomes:
            key = "delivered" if out.delivered else ("failed" if out.retry_at is not None else "dead")
            self.stats[key] += 1

    def drain(self, max_batches: int | None = None) -> int:
        """Run :meth:`step` until nothing is due (or ``max_batches``); return the deliveries attempted."""
        total, batches = 0, 0
        while max_batches is None or batches < max_batches:
            done = self.step()
            if not done:
                break
            total, batches = total + done, batches + 1
        return total

    def send(self, claimed: outbox.Claimed) -> outbox.Outcome:
        """Attempt one delivery; never raises (every failure is an outcome with its reason)."""
        code, error = None, None
        try:
            target = resolve(claimed.url, self.targets, self.resolver)
            body = body_of(claimed)
            headers = {
                "Host": target.host_header,
                "Content-Type": "application/json",
                "User-Agent": f"leadscore-webhooks/{leadscore.__version__}",
                EVENT_ID_HEADER: claimed.event_id,
                "Idempotency-Key": claimed.event_id,
                KIND_HEADER: claimed.kind,
                ATTEMPT_HEADER: str(claimed.attempts),
                SIGNATURE_HEADER: sign(claimed.secret, body),
            }
            code, snippet = self._post(target.pinned_url, target.host, body, headers)
            if 200 <= code < 300:
                return outbox.Outcome(claimed.delivery_id, True, code)
            error = (
                f"HTTP {code}: redirects are not followed" if 300 <= code < 400 else f"HTTP {code}: {snippet}"
            ).strip()
        except TargetRefused as err:
            error = f"target refused: {err}"
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        except Exception as err:  # noqa: BLE001 - a delivery's failure is recorded, never fatal to the worker
            error = f"{type(err).__name__}: {err}"
        retry_at = None
        if claimed.attempts < self.policy.max_attempts:
            retry_at = self._clock() + timedelta(seconds=self.policy.retry_delay(claimed.attempts, self._rng))
        return outbox.Outcome(claimed.delivery_id, False, code, error, retry_at)

    def _post(self, url: str, host: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST to the pinned address; the status and the start of the answer (at most ``max_response_bytes``
        read, within an overall deadline)."""
        deadline = time.monotonic() + (ATTEMPT_DEADLINE_TIMEOUTS - 1) * self.policy.timeout_s
        read = bytearray()
        client = self._http()
        with client.stream("POST", url, content=body, headers=headers, extensions={"sni_hostname": host}) as answer:
            for chunk in answer.iter_raw():
                read += chunk
                if len(read) >= self.policy.max_response_bytes or time.monotonic() > deadline:
                    break
            return answer.status_code, read[:300].decode("utf-8", "replace")

    def _http(self) -> httpx.Client:
        if self._client is None:
            n = self.policy.concurrency
            self._client = httpx.Client(
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would bypass the address check
                timeout=httpx.Timeout(self.policy.timeout_s),
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            )
        return self._client

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.policy.concurrency, thread_name_prefix="leadscore-webhook-send")
        return self._pool

    def _run_jobs(self, now: datetime) -> None:
        for job in self.jobs:
            if job.every_s <= 0:
                continue
            first = self._next_run.setdefault(job.name, now + timedelta(seconds=job.first_after_s))
            if now < first:
                continue
            self._next_run[job.name] = now + timedelta(seconds=job.every_s)
            try:
                job.run(now)
            except Exception as err:  # noqa: BLE001 - a periodic job's failure is logged; it runs again next time
                log.warning("webhooks: periodic job %s failed: %s: %s", job.name, type(err).__name__, err)
