"""Webhooks: signatures, the SSRF guard, the outbox in the store, the delivery worker against a real receiver,
the producers (grade crossed, follow-up, goal behind, model promoted) and the subscriptions API.

The store tests run on SQLite and PostgreSQL. The receiver is a real HTTP server in a subprocess
(``tools/webhook_receiver.py``) that verifies every signature with :func:`leadscore.webhooks.signing.verify`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from leadscore.api.main import create_app
from leadscore.store import outbox
from leadscore.store import scores as kept
from leadscore.store import webhook_subscriptions as stored
from leadscore.store.engine import run_in_write_transaction
from leadscore.store.tables import webhook_deliveries_table, webhook_outbox_table
from leadscore.webhooks import producers, subscriptions
from leadscore.webhooks.delivery import DeliveryPolicy, DeliveryWorker
from leadscore.webhooks.signing import InvalidSignature, sign, verify
from leadscore.webhooks.targets import TargetPolicy, TargetRefused, refusal, resolve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.webhook_receiver import Receiver  # noqa: E402 - the project root is not on the path under plain pytest

pytest_plugins = ["api_fixtures"]

SECRET = "whsec_test_secret_0123456789abcdef"
OPEN = TargetPolicy(allow_private=True)  # the receiver is on loopback
FAST = DeliveryPolicy(
    max_attempts=5, backoff_s=0.01, backoff_max_s=0.05, timeout_s=2.0, lease_s=30.0, concurrency=4, batch=8
)
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def receiver(tmp_path):
    made = []

    def make(**options) -> Receiver:
        r = Receiver(tmp_path / f"receiver-{len(made)}.jsonl", SECRET, **options).start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.kill()


def subscribe(engine, url: str, kinds=("lead.grade_changed", "model.promoted", "webhook.ping")) -> int:
    return subscriptions.create(engine, url, list(kinds), secret=SECRET, policy=OPEN)["id"]


def enqueue(engine, events: list[outbox.NewEvent]) -> outbox.Enqueued:
    return run_in_write_transaction(engine, lambda conn: outbox.enqueue_many(conn, events))


def statuses(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return outbox.counts(conn)


def drain_until_done(worker: DeliveryWorker, engine, timeout_s: float = 60.0) -> None:
    """Step the worker until nothing is pending (retries wait their short backoff)."""
    deadline = time.monotonic() + timeout_s
    while statuses(engine)["pending"] and time.monotonic() < deadline:
        if not worker.step():
            time.sleep(0.02)
    assert statuses(engine)["pending"] == 0


# ------------------------------------------------------------------------------------------- signatures


def test_a_signed_body_verifies_and_any_change_or_old_timestamp_is_refused():
    body = b'{"id":"e1","kind":"model.promoted"}'
    header = sign(SECRET, body, timestamp=1_700_000_000)
    assert verify(body, header, SECRET, now=1_700_000_100) == 1_700_000_000
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(body.replace(b"e1", b"e2"), header, SECRET, now=1_700_000_100)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(body, header, SECRET + "x", now=1_700_000_100)
    with pytest.raises(InvalidSignature, match="replay window"):
        verify(body, header, SECRET, now=1_700_000_000 + 301)
    with pytest.raises(InvalidSignature, match="malformed"):
        verify(body, "v1=abc", SECRET)
    with pytest.raises(InvalidSignature, match="no X-Leadscore-Signature"):
        verify(body, None, SECRET)


def test_a_header_with_a_signature_per_secret_verifies_with_either_during_a_rotation():
    body = b"{}"
    old, new = sign("old-secret-0123456789abcdef", body, timestamp=10), sign(SECRET, body, timestamp=10)
    header = f"{old},v1={new.split('v1=')[1]}"
    assert verify(body, header, SECRET, now=10) == 10
    assert verify(body, header, "old-secret-0123456789abcdef", now=10) == 10


# ------------------------------------------------------------------------------------------- SSRF guard


@pytest.mark.parametrize(
    "address, why",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
    ],
)
def test_non_public_addresses_are_refused_saying_why(address, why):
    import ipaddress

    assert refusal(ipaddress.ip_address(address)) == why
    with pytest.raises(TargetRefused, match=why):
        resolve("https://hooks.example.com/x", TargetPolicy(), resolver=lambda host, port: [address])


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    with pytest.raises(TargetRefused, match="10.0.0.7, a private address"):
        resolve("https://hooks.example.com/x", TargetPolicy(), resolver=lambda h, p: ["93.184.215.14", "10.0.0.7"])


def test_a_public_target_is_pinned_to_the_checked_address_keeping_the_host_for_tls():
    target = resolve("https://hooks.example.com:8443/in?x=1", TargetPolicy(), resolver=lambda h, p: ["93.184.215.14"])
    assert target.pinned_url == "https://93.184.215.14:8443/in?x=1"
    assert (target.host, target.host_header) == ("hooks.example.com", "hooks.example.com:8443")


def test_the_operator_may_allow_chosen_networks_or_every_private_address():
    def at(address):
        return lambda h, p: [address]

    allowed = TargetPolicy.from_settings(False, ["10.20.0.0/16"])
    assert resolve("http://crm.internal/x", allowed, resolver=at("10.20.3.4")).address == "10.20.3.4"
    with pytest.raises(TargetRefused, match="private"):
        resolve("http://crm.internal/x", allowed, resolver=at("10.21.0.1"))
    assert resolve("http://crm.internal/x", TargetPolicy(allow_private=True), resolver=at("10.21.0.1"))


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/x", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("http:///nohost", "no host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://" + "a" * 2050 + ".com/", "longer than"),
    ],
)
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(TargetRefused, match=message):
        resolve(url, TargetPolicy(allow_private=True))


# ------------------------------------------------------------------------------------------- the outbox


def test_an_event_nobody_wants_is_not_stored_and_a_rolled_back_one_never_existed(repo):
    engine = repo.engine
    assert enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "2"})]).events == 0
    subscribe(engine, "http://127.0.0.1:9/hook", ["model.promoted"])
    with pytest.raises(RuntimeError, match="the change failed"):
        with engine.begin() as conn:
            outbox.enqueue(conn, "model.promoted", {"version": "2"})
            raise RuntimeError("the change failed")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_outbox_table)).scalar_one() == 0
    assert enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "2"})]).deliveries == 1


def test_a_lead_s_events_are_claimed_one_at_a_time_in_order_while_other_leads_proceed(repo):
    engine = repo.engine
    subscribe(engine, "http://127.0.0.1:9/hook")
    enqueue(engine, [outbox.NewEvent("lead.grade_changed", {"n": n}, lead_id=f"L{n % 2}") for n in range(6)])

    def claim(now):
        return run_in_write_transaction(
            engine, lambda c: outbox.claim(c, 10, worker="w", now=now, lease_until=now + timedelta(seconds=30))
        )

    first = claim(datetime.now(UTC))
    assert [(c.lead_id, c.payload["n"]) for c in first] == [("L0", 0), ("L1", 1)]
    assert claim(datetime.now(UTC)) == []  # both leads wait for their first event
    done = [outbox.Outcome(first[0].delivery_id, True, 200)]
    failed = [outbox.Outcome(first[1].delivery_id, False, 500, "HTTP 500", datetime.now(UTC))]
    run_in_write_transaction(engine, lambda c: outbox.mark(c, done + failed, worker="w", now=datetime.now(UTC)))
    second = claim(datetime.now(UTC) + timedelta(seconds=1))
    # L0 moves on to its second event; L1's first is retried before its second.
    assert sorted((c.lead_id, c.payload["n"], c.attempts) for c in second) == [("L0", 2, 1), ("L1", 1, 2)]


def test_a_lease_that_runs_out_makes_a_delivery_claimable_again_and_a_stale_mark_is_ignored(repo):
    engine = repo.engine
    subscribe(engine, "http://127.0.0.1:9/hook")
    enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "3"})])
    now = datetime.now(UTC)

    def claim(worker, at):
        return run_in_write_transaction(
            engine, lambda c: outbox.claim(c, 10, worker=worker, now=at, lease_until=at + timedelta(seconds=30))
        )

    (taken,) = claim("killed", now)
    assert claim("other", now + timedelta(seconds=10)) == []  # still leased
    (again,) = claim("other", now + timedelta(seconds=31))  # the first worker died: the lease ran out
    assert (again.delivery_id, again.attempts) == (taken.delivery_id, 2)
    late = [outbox.Outcome(taken.delivery_id, False, 500, "late", now)]
    assert run_in_write_transaction(engine, lambda c: outbox.mark(c, late, worker="killed", now=now)) == 0
    ok = [outbox.Outcome(again.delivery_id, True, 204)]
    assert run_in_write_transaction(engine, lambda c: outbox.mark(c, ok, worker="other", now=now)) == 1
    assert statuses(engine) == {"pending": 0, "delivered": 1, "dead": 0}


def test_a_dedupe_key_stores_a_fact_once(repo):
    engine = repo.engine
    subscribe(engine, "http://127.0.0.1:9/hook", ["goal.behind"])
    event = outbox.NewEvent("goal.behind", {"metric": "calls"}, dedupe_key="goal.behind:calls:week:team:x:behind")
    assert enqueue(engine, [event]).events == 1
    assert enqueue(engine, [event, event]).events == 0


# ------------------------------------------------------------------------------------------- delivery


def test_every_event_is_delivered_signed_in_order_per_lead_through_a_flaky_receiver(repo, receiver):
    flaky = receiver(fail_rate=0.3, seed=7)
    engine = repo.engine
    sub = subscribe(engine, flaky.url)
    events = [outbox.NewEvent("lead.grade_changed", {"n": n}, lead_id=f"L{n % 5}") for n in range(60)]
    ids = enqueue(engine, events).event_ids
    worker = DeliveryWorker(engine, policy=dataclasses.replace(FAST, max_attempts=50), targets=OPEN, seed=1)
    drain_until_done(worker, engine)
    worker.close()
    accepted = flaky.entries("accepted")
    assert flaky.entries("bad_signature") == []
    assert flaky.entries("failed")  # the receiver did fail some: they were retried
    assert {e["event_id"] for e in accepted} == set(ids.values())
    assert len(accepted) == len(ids)  # a 500 is answered before accepting: no duplicates here
    for lead in {e["lead_id"] for e in accepted}:
        sequences = [e["sequence"] for e in accepted if e["lead_id"] == lead]
        assert sequences == sorted(sequences)
    with engine.connect() as conn:
        log = outbox.deliveries(conn, sub, limit=500)
    assert {row["status"] for row in log} == {"delivered"} and {row["response_code"] for row in log} == {200}
    assert max(row["attempts"] for row in log) > 1


def test_a_receiver_that_keeps_failing_dead_letters_the_event_and_the_lead_moves_on(repo, receiver):
    broken = receiver(fail_rate=1.0)
    engine = repo.engine
    sub = subscribe(engine, broken.url)
    enqueue(engine, [outbox.NewEvent("lead.grade_changed", {"n": n}, lead_id="L1") for n in range(2)])
    worker = DeliveryWorker(engine, policy=FAST, targets=OPEN, seed=1)
    drain_until_done(worker, engine)
    assert statuses(engine) == {"pending": 0, "delivered": 0, "dead": 2}
    assert len(broken.entries("failed")) == 2 * FAST.max_attempts
    with engine.connect() as conn:
        (latest, first) = outbox.deliveries(conn, sub)
    assert first["attempts"] == FAST.max_attempts and first["response_code"] == 500
    assert first["last_error"] == "HTTP 500: try again"
    # Redelivery puts the dead letters back; a receiver that works now takes them.
    broken.kill()
    fixed = Receiver(broken.log, SECRET)
    fixed.port, fixed.url = broken.port, broken.url
    fixed.start()
    try:
        assert run_in_write_transaction(engine, lambda c: outbox.redeliver(c, sub)) == 2
        drain_until_done(worker, engine)
    finally:
        fixed.kill()
        worker.close()
    assert statuses(engine) == {"pending": 0, "delivered": 2, "dead": 0}
    assert len(fixed.entries("accepted")) == 2


def test_a_redirect_is_a_failed_attempt_and_is_never_followed(repo, receiver):
    redirecting = receiver(redirect=True)
    engine = repo.engine
    sub = subscribe(engine, redirecting.url)
    enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "4"})])
    worker = DeliveryWorker(engine, policy=dataclasses.replace(FAST, max_attempts=2), targets=OPEN)
    drain_until_done(worker, engine)
    worker.close()
    assert {e["path"] for e in redirecting.entries("accepted")} == {"/hook"}  # /elsewhere never asked
    with engine.connect() as conn:
        (row,) = outbox.deliveries(conn, sub)
    assert (row["status"], row["response_code"]) == ("dead", 307)
    assert "redirects are not followed" in row["last_error"]


def test_the_target_is_checked_again_at_delivery_so_a_name_that_now_resolves_inside_is_refused(repo, receiver):
    r = receiver()
    engine = repo.engine
    sub = subscribe(engine, r.url)  # allowed when created (the operator allowed private targets then)
    enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "5"})])
    strict = DeliveryWorker(engine, policy=dataclasses.replace(FAST, max_attempts=1), targets=TargetPolicy())
    drain_until_done(strict, engine)
    strict.close()
    assert r.entries() == []  # no request reached it
    with engine.connect() as conn:
        (row,) = outbox.deliveries(conn, sub)
    assert row["status"] == "dead" and row["last_error"].startswith("target refused: the host '127.0.0.1'")


def test_a_rebinding_name_is_refused_at_delivery_time(repo, receiver):
    r = receiver()
    engine = repo.engine
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])  # public when subscribed, loopback when delivered
    sub = subscriptions.create(
        engine,
        f"http://hooks.example.com:{r.port}/hook",
        ["model.promoted"],
        secret=SECRET,
        policy=TargetPolicy(),
        resolver=lambda h, p: next(answers),
    )["id"]
    enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "6"})])
    worker = DeliveryWorker(
        engine,
        policy=dataclasses.replace(FAST, max_attempts=1),
        targets=TargetPolicy(),
        resolver=lambda h, p: next(answers),
    )
    drain_until_done(worker, engine)
    worker.close()
    assert r.entries() == []
    with engine.connect() as conn:
        (row,) = outbox.deliveries(conn, sub)
    assert "127.0.0.1, a loopback address" in row["last_error"]


def test_a_delivery_to_a_name_goes_to_the_pinned_address_with_the_name_as_host(repo, receiver):
    r = receiver()
    engine = repo.engine
    subscriptions.create(
        engine,
        f"http://hooks.example.com:{r.port}/hook",
        ["model.promoted"],
        secret=SECRET,
        policy=OPEN,
        resolver=lambda h, p: ["127.0.0.1"],
    )
    enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "7"})])
    worker = DeliveryWorker(engine, policy=FAST, targets=OPEN, resolver=lambda h, p: ["127.0.0.1"])
    drain_until_done(worker, engine)
    worker.close()
    (entry,) = r.entries("accepted")
    assert entry["host"] == f"hooks.example.com:{r.port}"


# ------------------------------------------------------------------------------------------- producers


def _score_frame(grades: dict[str, tuple[str, float, bool]]) -> pd.DataFrame:
    """Score rows as the keeper writes them: lead -> (grade, probability, needs follow-up)."""
    n = len(grades)
    frame = pd.DataFrame({"lead_id": list(grades)})
    for column in kept.SCORE_COLUMNS:
        frame[column] = [None] * n
    frame["grade"] = [g for g, _, _ in grades.values()]
    frame["probability"] = [p for _, p, _ in grades.values()]
    frame["needs_follow_up"] = [f for _, _, f in grades.values()]
    frame["model_version"] = "1"
    frame["cutoff"] = pd.Timestamp(T0)
    frame["expected_value"] = float("nan")
    frame["reasons_up"] = [[] for _ in range(n)]
    frame["reasons_down"] = [[] for _ in range(n)]
    return frame.drop(columns=["reasons"])


def _keep(repo, grades):
    now = datetime.now(UTC)
    claims = {lead: kept.Claim(lead, 0, None, None, None) for lead in grades}
    return run_in_write_transaction(
        repo.engine,
        lambda conn: kept.write_scores(conn, _score_frame(grades), claims, computed_at=now, history_change=0.005),
    )


def _events(engine) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(webhook_outbox_table.c.kind, webhook_outbox_table.c.payload).order_by(webhook_outbox_table.c.id)
        ).all()
    return [(kind, dict(payload)) for kind, payload in rows]


def test_the_keeper_s_write_enqueues_grade_crossings_and_new_follow_ups_but_not_first_scores(repo):
    leads = pd.DataFrame({"lead_id": ["L1", "L2", "L3"], "created_at": ["2025-01-01"] * 3})
    repo.ingest(leads=leads)
    subscribe(repo.engine, "http://127.0.0.1:9/hook", ["lead.grade_changed", "lead.needs_follow_up"])
    first = _keep(repo, {"L1": ("B", 0.30, False), "L2": ("C", 0.10, False), "L3": ("A", 0.6, True)})
    assert first["events"] == 0 and _events(repo.engine) == []  # first scores are not crossings
    second = _keep(repo, {"L1": ("A", 0.55, False), "L2": ("C", 0.11, True), "L3": ("B", 0.4, True)})
    assert second["events"] == 3
    found = _events(repo.engine)
    crossings = {
        p["lead_id"]: (p["from_grade"], p["to_grade"], p["direction"]) for k, p in found if k.endswith("grade_changed")
    }
    assert crossings == {"L1": ("B", "A", "up"), "L3": ("A", "B", "down")}
    assert [p["lead_id"] for k, p in found if k == "lead.needs_follow_up"] == ["L2"]  # L3 was already flagged


def test_no_subscriber_means_the_keeper_s_write_reads_and_stores_nothing_more(repo):
    repo.ingest(leads=pd.DataFrame({"lead_id": ["L1"], "created_at": ["2025-01-01"]}))
    _keep(repo, {"L1": ("B", 0.3, False)})
    assert _keep(repo, {"L1": ("A", 0.6, True)})["events"] == 0
    assert _events(repo.engine) == []


def test_a_goal_falling_behind_is_announced_once_per_period_and_status(repo):
    leads = pd.DataFrame({"lead_id": ["L1"], "created_at": ["2025-03-01"]})
    events = pd.DataFrame({"event_id": ["e1"], "lead_id": ["L1"], "at": ["2025-03-03T08:00Z"], "type": ["call"]})
    repo.ingest(leads=leads, events=events)
    goals = pd.DataFrame({"metric": ["calls"], "period": ["week"], "target": [70.0], "start": ["2025-01-06"]})
    repo.upsert_goals(goals)
    subscribe(repo.engine, "http://127.0.0.1:9/hook", ["goal.behind"])
    monday = datetime(2025, 3, 3, 12, tzinfo=UTC)  # 7% of the week gone: too early to judge
    assert producers.check_goals(repo, monday) == 0
    thursday = datetime(2025, 3, 6, 12, tzinfo=UTC)  # 1 call of the 35 expected by now
    assert producers.check_goals(repo, thursday) == 1
    assert producers.check_goals(repo, thursday + timedelta(hours=1)) == 0  # same goal, period and status
    ((kind, payload),) = _events(repo.engine)
    assert kind == "goal.behind"
    assert (payload["metric"], payload["scope"], payload["status"], payload["actual"]) == ("calls", "team", "behind", 1)
    assert payload["period_start"].startswith("2025-03-03")
    assert producers.check_goals(repo, thursday + timedelta(days=7)) == 1  # the next week is judged anew


def test_a_promotion_noticed_by_several_is_announced_once_and_a_rollback_is_announced_too(repo):
    engine = repo.engine
    subscribe(engine, "http://127.0.0.1:9/hook", ["model.promoted"])
    assert producers.model_promoted(engine, "2", previous_version="1", source="cli")
    assert producers.model_promoted(engine, "2", previous_version="1", source="service") is None
    assert producers.model_promoted(engine, "1", previous_version="2", source="rollback")
    assert producers.model_promoted(engine, "2", previous_version="1", source="cli")  # promoted again: news
    assert [(p["version"], p["source"]) for _, p in _events(engine)] == [("2", "cli"), ("1", "rollback"), ("2", "cli")]


def test_a_drift_report_is_enqueued_once_per_version_feature_and_window(repo):
    engine = repo.engine
    subscribe(engine, "http://127.0.0.1:9/hook", ["drift.detected"])
    report = {
        "model_version": "3",
        "feature": "source",
        "psi": 0.31,
        "threshold": 0.25,
        "window_start": "2025-03-03",
        "window_end": "2025-03-10",
    }
    assert run_in_write_transaction(engine, lambda c: producers.drift_detected(c, report))
    assert run_in_write_transaction(engine, lambda c: producers.drift_detected(c, report)) is None
    with pytest.raises(ValueError, match="lacks \\['psi'\\]"):
        producers.drift_detected(None, {k: v for k, v in report.items() if k != "psi"})


# ------------------------------------------------------------------------------------------- the API

ADMIN = {"X-API-Key": "hooks-key"}


def _app(make_settings, store_url, **overrides):
    keys = {"hooks-key": ["webhooks"], "read-key": ["read"]}
    return create_app(make_settings(store_url, api_keys=keys, webhooks_allow_private=True, **overrides))


def test_subscribing_shows_the_secret_once_and_the_log_tells_each_delivery(store_url, make_settings, receiver):
    r = receiver()
    app = _app(make_settings, store_url)
    with TestClient(app) as client:
        made = client.post("/api/v1/webhooks", json={"url": r.url, "events": ["webhook.ping"]}, headers=ADMIN)
        assert made.status_code == 201, made.text
        sub = made.json()
        assert sub["secret"].startswith("whsec_") and sub["events"] == ["webhook.ping"]
        listed = client.get("/api/v1/webhooks", headers=ADMIN).json()
        assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
        assert "secret" not in client.get(f"/api/v1/webhooks/{sub['id']}", headers=ADMIN).json()
        r.secret = sub["secret"]
        r.kill()
        r.start()  # the receiver now checks the generated secret
        pinged = client.post(f"/api/v1/webhooks/{sub['id']}/ping", headers=ADMIN)
        assert pinged.status_code == 202
        deadline = time.monotonic() + 30
        while not r.entries("accepted") and time.monotonic() < deadline:
            time.sleep(0.05)  # the service's own worker delivers it
        (entry,) = r.entries("accepted")
        assert entry["event_id"] == pinged.json()["event_id"] and entry["kind"] == "webhook.ping"
        for _ in range(100):
            log = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=ADMIN).json()
            if log["counts"]["delivered"]:
                break
            time.sleep(0.05)
        assert log["counts"] == {"pending": 0, "delivered": 1, "dead": 0}
        assert log["items"][0]["status"] == "delivered" and log["items"][0]["response_code"] == 200
        assert client.delete(f"/api/v1/webhooks/{sub['id']}", headers=ADMIN).status_code == 204
        assert client.get(f"/api/v1/webhooks/{sub['id']}", headers=ADMIN).status_code == 404


def test_bad_subscriptions_are_422s_naming_each_field_and_store_nothing(store_url, make_settings):
    app = create_app(make_settings(store_url, api_keys={"hooks-key": ["webhooks"]}))  # private targets refused
    with TestClient(app) as client:
        bad = {
            "url": "http://127.0.0.1:8080/hook",
            "events": ["lead.grade_changed", "lead.exploded"],
            "secret": "short",
        }
        answer = client.post("/api/v1/webhooks", json=bad, headers=ADMIN)
        assert answer.status_code == 422
        problems = {tuple(p["loc"]): p["msg"] for p in answer.json()["detail"]}
        assert "loopback address" in problems[("body", "url")]
        assert "unknown event kind(s) ['lead.exploded']" in problems[("body", "events")]
        assert "24 to 256 characters" in problems[("body", "secret")]
        scheme = client.post(
            "/api/v1/webhooks", json={"url": "gopher://x/", "events": ["model.promoted"]}, headers=ADMIN
        )
        assert scheme.status_code == 422 and "http or https" in scheme.json()["detail"][0]["msg"]
        extra = client.post(
            "/api/v1/webhooks", json={"url": "https://x.example", "events": [], "retries": 3}, headers=ADMIN
        )
        assert extra.status_code == 422
        assert client.get("/api/v1/webhooks", headers=ADMIN).json() == []


def test_the_webhook_routes_need_the_webhooks_scope(store_url, make_settings):
    app = create_app(make_settings(store_url, api_keys={"read-key": ["read"]}))
    with TestClient(app) as client:
        assert client.get("/api/v1/webhooks").status_code == 401
        refused = client.get("/api/v1/webhooks", headers={"X-API-Key": "read-key"})
        assert refused.status_code == 403 and "'webhooks' scope" in refused.json()["detail"]
        assert client.post("/api/v1/webhooks", headers={"X-API-Key": "read-key"}, json={}).status_code == 403


def test_redeliver_through_the_api_queues_the_dead_letters(repo, store_url, make_settings):
    engine = repo.engine
    sub = subscribe(engine, "http://127.0.0.1:9/hook", ["model.promoted"])
    enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "8"})])
    with engine.begin() as conn:
        conn.execute(sa.update(webhook_deliveries_table).values(status="dead", attempts=16))
    app = _app(make_settings, store_url, webhooks=False)
    with TestClient(app) as client:
        assert client.post(f"/api/v1/webhooks/{sub}/redeliver", headers=ADMIN).json() == {"queued": 1}
        assert client.post("/api/v1/webhooks/999/redeliver", headers=ADMIN).status_code == 404
        log = client.get(f"/api/v1/webhooks/{sub}/deliveries", params={"status": "pending"}, headers=ADMIN).json()
        assert [(i["status"], i["attempts"]) for i in log["items"]] == [("pending", 0)]
        assert (
            client.get(f"/api/v1/webhooks/{sub}/deliveries", params={"status": "lost"}, headers=ADMIN).status_code
            == 422
        )


def test_deleting_a_subscription_drops_its_pending_deliveries(repo):
    engine = repo.engine
    sub = subscribe(engine, "http://127.0.0.1:9/hook", ["model.promoted"])
    enqueue(engine, [outbox.NewEvent("model.promoted", {"version": "9"})])
    assert run_in_write_transaction(engine, lambda c: stored.delete(c, sub))
    assert statuses(engine) == {"pending": 0, "delivered": 0, "dead": 0}


def test_periodic_jobs_run_when_due_and_a_delayed_one_waits_its_first_interval(repo):
    from leadscore.webhooks.delivery import PeriodicJob

    runs: list[tuple[str, datetime]] = []
    now = {"t": T0}
    jobs = [
        PeriodicJob("goal check", 3600, lambda at: runs.append(("goal check", at))),
        PeriodicJob("prune", 3600, lambda at: runs.append(("prune", at)), first_after_s=3600),
    ]
    worker = DeliveryWorker(repo.engine, jobs=jobs, clock=lambda: now["t"])
    worker.step()
    worker.step()
    assert runs == [("goal check", T0)]
    now["t"] = T0 + timedelta(hours=1)
    worker.step()
    assert runs[1:] == [("goal check", now["t"]), ("prune", now["t"])]
