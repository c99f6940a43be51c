"""Benchmark: 10,000 webhook events to a receiver that fails 20 % of requests and is restarted once midway.

The receiver is a real HTTP server in a subprocess (``tools/webhook_receiver.py``): it verifies every signature,
answers 500 to a random 20 % of requests, and logs each accepted event before answering. When half the events
have been accepted the benchmark SIGKILLs it and starts it again on the same port a second later.

Side by side, in one run, with the same receiver behaviour:

- ``outbox``: leadscore's way. The events are enqueued in the store (one transaction) and delivered by a
  :class:`~leadscore.webhooks.delivery.DeliveryWorker` (8 in flight, never two of one lead; retries with
  exponential backoff and jitter, here from 50 ms capped at 1 s so the run is short; up to 100 attempts).
  Checked: every event accepted, no bad signature, each lead's events first accepted in order, and duplicates
  (events accepted twice) within the contract: at most the requests in flight when the receiver was killed;
- ``direct``: the common alternative, posting each event once from the code that produced it (8 threads, no
  outbox, no retries): faster, but every failed request and every request during the restart loses its event.

Run: ``.venv/bin/python benchmarks/webhooks.py`` (``--events``, ``--leads``, ``--database-url`` for PostgreSQL).
The last line printed is one JSON object. Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leadscore.store import create_engine, outbox, upgrade_database  # noqa: E402
from leadscore.store.engine import run_in_write_transaction  # noqa: E402
from leadscore.webhooks import subscriptions  # noqa: E402
from leadscore.webhooks.delivery import DeliveryPolicy, DeliveryWorker  # noqa: E402
from leadscore.webhooks.signing import sign  # noqa: E402
from leadscore.webhooks.targets import TargetPolicy  # noqa: E402
from tools.webhook_receiver import Receiver  # noqa: E402

SECRET = "whsec_benchmark_secret_0123456789abcdef"
FAIL_RATE = 0.2
CONCURRENCY = 8


def restart_midway(receiver: Receiver, half: int, stop: threading.Event, record: dict) -> None:
    """SIGKILL the receiver once half the events are accepted; start it again a second later."""
    while not stop.is_set():
        text = receiver.log.read_text(encoding="utf-8") if receiver.log.exists() else ""
        if text.count('"outcome": "accepted"') >= half:  # cheap: the log is parsed only at the end
            receiver.kill()
            record["killed_at_accepted"] = len(receiver.entries("accepted"))
            time.sleep(1.0)
            receiver.start()
            record["restarted"] = True
            return
        time.sleep(0.05)


def check(receiver: Receiver, expected: set[str]) -> dict:
    accepted = receiver.entries("accepted")
    ids = [e["id"] for e in accepted]
    unique = set(ids)
    first: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for entry in accepted:
        if entry["id"] not in seen:
            seen.add(entry["id"])
            first[entry["lead_id"]].append(entry["sequence"])
    return {
        "delivered": len(unique & expected),
        "lost": len(expected - unique),
        "duplicates": len(ids) - len(unique),
        "bad_signatures": len(receiver.entries("bad_signature")),
        "requests_failed_by_receiver": len(receiver.entries("failed")),
        "in_order_per_lead": all(s == sorted(s) for s in first.values()),
    }


def run_outbox(database_url: str, work: Path, n_events: int, n_leads: int) -> dict:
    receiver = Receiver(work / "outbox.jsonl", SECRET, fail_rate=FAIL_RATE, seed=11).start()
    engine = create_engine(database_url)
    try:
        subscriptions.create(
            engine, receiver.url, ["lead.grade_changed"], secret=SECRET, policy=TargetPolicy(allow_private=True)
        )
        events = [
            outbox.NewEvent("lead.grade_changed", {"n": n, "to_grade": "ABCD"[n % 4]}, lead_id=f"L{n % n_leads:05d}")
            for n in range(n_events)
        ]
        started = time.perf_counter()
        ids = run_in_write_transaction(engine, lambda conn: outbox.enqueue_many(conn, events)).event_ids
        enqueue_s = time.perf_counter() - started
        policy = DeliveryPolicy(
            max_attempts=100, backoff_s=0.05, backoff_max_s=1.0, timeout_s=5.0, lease_s=60.0, concurrency=CONCURRENCY
        )
        worker = DeliveryWorker(engine, policy=policy, targets=TargetPolicy(allow_private=True), idle_s=0.02, seed=5)
        stop, record = threading.Event(), {"restarted": False}
        restarter = threading.Thread(target=restart_midway, args=(receiver, n_events // 2, stop, record))
        restarter.start()
        started = time.perf_counter()
        worker.start()
        while True:
            with engine.connect() as conn:
                if outbox.counts(conn)["pending"] == 0:
                    break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        worker.stop()
        stop.set()
        restarter.join()
        with engine.connect() as conn:
            counts = outbox.counts(conn)
        result = check(receiver, set(ids.values()))
        result.update(
            events=n_events,
            leads=n_leads,
            seconds=round(seconds, 2),
            events_per_s=round(n_events / seconds, 1),
            enqueue_events_per_s=round(n_events / enqueue_s, 1),
            attempts=sum(worker.stats.values()),
            dead_lettered=counts["dead"],
            duplicate_bound=CONCURRENCY,
            duplicates_within_contract=result["duplicates"] <= CONCURRENCY,
            receiver_restarted=record["restarted"],
        )
        return result
    finally:
        receiver.kill()
        engine.dispose()


def run_direct(work: Path, n_events: int, n_leads: int) -> dict:
    """Each event posted once, signed, by the code that produced it: no outbox, no retries."""
    receiver = Receiver(work / "direct.jsonl", SECRET, fail_rate=FAIL_RATE, seed=11).start()
    client = httpx.Client(timeout=5.0, limits=httpx.Limits(max_connections=CONCURRENCY))
    ids = [f"direct-{n:06d}" for n in range(n_events)]

    def post(n: int) -> None:
        body = json.dumps(
            {"id": ids[n], "kind": "lead.grade_changed", "sequence": n, "lead_id": f"L{n % n_leads:05d}", "data": {}}
        ).encode()
        headers = {"X-Leadscore-Signature": sign(SECRET, body), "X-Leadscore-Event-Id": ids[n]}
        try:
            client.post(receiver.url, content=body, headers=headers)
        except httpx.HTTPError:
            pass  # lost: nobody retries

    stop, record = threading.Event(), {"restarted": False}
    restarter = threading.Thread(target=restart_midway, args=(receiver, n_events // 2, stop, record))
    restarter.start()
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(post, range(n_events)))
        seconds = time.perf_counter() - started
        stop.set()
        restarter.join()
        result = check(receiver, set(ids))
        result.update(
            events=n_events,
            seconds=round(seconds, 2),
            events_per_s=round(n_events / seconds, 1),
            receiver_restarted=record["restarted"],
        )
        return result
    finally:
        client.close()
        receiver.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--leads", type=int, default=1_000)
    parser.add_argument("--database-url", default=None, help="Default: a SQLite file in a temporary folder.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="leadscore-webhooks-bench-"))
    try:
        database_url = args.database_url or f"sqlite:///{work / 'leadscore.db'}"
        upgrade_database(database_url)
        ours = run_outbox(database_url, work, args.events, args.leads)
        direct = run_direct(work, args.events, args.leads)
        print(f"{'':<28} {'outbox (leadscore)':>20} {'direct, no retries':>20}")
        for key in ("events_per_s", "delivered", "lost", "duplicates", "bad_signatures", "in_order_per_lead"):
            print(f"{key:<28} {str(ours[key]):>20} {str(direct[key]):>20}")
        print(
            f"outbox: {ours['events']:,} events in {ours['seconds']} s = {ours['events_per_s']:,} events/s "
            f"({ours['attempts']:,} attempts, {ours['requests_failed_by_receiver']:,} answered 500, receiver "
            f"restarted once); enqueued at {ours['enqueue_events_per_s']:,} events/s"
        )
        backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
        print(json.dumps({"backend": backend, "outbox": ours, "direct_no_outbox": direct}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
