"""Ingestion against a real uvicorn server on loopback: concurrent clients with retries, and a crash.

Bounded loops throughout: a few clients, a few batches each, timeouts on every request.
"""

from __future__ import annotations

import json
import random
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from leadscore.store import Repository

pytest_plugins = ["api_fixtures"]

pytestmark = pytest.mark.slow

HEADERS = {"X-API-Key": "ingest-key"}
N_LEADS = 40
UNIVERSE = [
    {
        "event_id": f"ev-{i:05d}",
        "lead_id": f"L{i % N_LEADS:03d}",
        "at": f"2024-02-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        "type": ("email_sent", "call", "web_visit")[i % 3],
        "duration_s": 60.0 if i % 3 == 1 else None,
    }
    for i in range(600)
]


def lead(lead_id: str) -> dict:
    return {"lead_id": lead_id, "created_at": "2024-01-01T00:00:00Z", "owner_id": f"rep_{lead_id[-1]}"}


def post_with_retries(client: httpx.Client, body: dict, attempts: int = 6) -> httpx.Response:
    """What a CRM does: retry on a dropped connection or a 503, with a short backoff."""
    for attempt in range(attempts):
        try:
            response = client.post("/api/v1/events", json=body, headers=HEADERS)
        except httpx.TransportError:
            time.sleep(0.05 * 2**attempt)
            continue
        if response.status_code != 503:
            return response
        time.sleep(0.05 * 2**attempt)
    raise AssertionError(f"no answer after {attempts} attempts")


def stored_event_ids(url: str) -> list[str]:
    repo = Repository.from_url(url)
    try:
        return repo.load_events()["event_id"].tolist()
    finally:
        repo.engine.dispose()


def test_concurrent_overlapping_batches_with_retries_store_every_event_once(store_url, make_server):
    server = make_server(store_url)
    sent: set[str] = set()
    failures: list[str] = []
    answered: list[int] = []
    lock = threading.Lock()

    def crm(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
            for _ in range(8):
                batch = rng.sample(UNIVERSE, 50)
                leads = [lead(i) for i in sorted({e["lead_id"] for e in batch}, key=lambda _: rng.random())]
                body = {"events": batch, "leads": leads}
                for _ in range(2):  # the second post is the retry of a CRM that lost the acknowledgement
                    response = post_with_retries(client, body)
                    with lock:
                        answered.append(response.status_code)
                    if response.status_code != 200:
                        with lock:
                            failures.append(f"{response.status_code}: {response.text[:300]}")
                with lock:
                    sent.update(e["event_id"] for e in batch)

    threads = [threading.Thread(target=crm, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)

    assert not any(t.is_alive() for t in threads), "a client never finished"
    assert len(answered) == 4 * 8 * 2, "every post (and its retry) got an answer"
    assert not failures, failures
    stored = stored_event_ids(store_url)
    assert len(stored) == len(set(stored)) == len(sent)
    assert set(stored) == sent


def crash_batch(b: int) -> dict:
    """Batch ``b`` of the crash test: five new leads and 100 events of theirs, every field used somewhere."""
    leads = [
        {
            "lead_id": f"K{b:02d}-{j}",
            "created_at": f"2024-01-{1 + j:02d}T08:30:00Z",
            "owner_id": f"rep_{j % 3}",
            "source": ("web", "referral", "event")[j % 3],
            "attributes": {"segment": ("SMB", "enterprise")[j % 2], "company_size": 10 * (b + j)},
        }
        for j in range(5)
    ]
    events = []
    for i in range(100):
        event = {
            "event_id": f"k-{b:02d}-{i:03d}",
            "lead_id": f"K{b:02d}-{i % 5}",
            "at": f"2024-02-{1 + i % 28:02d}T{i % 24:02d}:{b:02d}:00Z",
            "type": ("call", "stage_changed", "meeting_scheduled", "email_sent", "web_visit")[i % 5],
        }
        event |= [
            {"rep_id": f"rep_{i % 3}", "duration_s": 30.5 + i, "subtype": "cold"},
            {"stage": "qualified", "amount": 1000.25 * (b + 1)},
            {"rep_id": "rep_1", "scheduled_for": f"2024-03-{1 + i % 28:02d}T10:00:00Z"},
            {"rep_id": "rep_2"},
            {},
        ][i % 5]
        events.append(event)
    return {"leads": leads, "events": events}


CRASH_BATCHES = [crash_batch(b) for b in range(30)]
EVENT_FIELDS = ["event_id", "lead_id", "at", "type", "rep_id", "duration_s", "scheduled_for", "stage", "amount",
                "subtype"]  # fmt: skip


def _plain(value):
    """A stored value as it was sent: timestamps as ISO strings with Z, missing as None, numbers as floats."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return float(value) if isinstance(value, int | float | np.number) else value


def stored_content(url: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """Every stored lead and event by id, each field as it would have been sent."""
    repo = Repository.from_url(url)
    try:
        leads, events = repo.load_leads(), repo.load_events()
    finally:
        repo.engine.dispose()
    lead_rows = {}
    for row in leads.to_dict("records"):
        plain = {k: _plain(v) for k, v in row.items()}
        core = {k: plain.pop(k) for k in ("lead_id", "created_at", "owner_id", "source")}
        lead_rows[core["lead_id"]] = core | {"attributes": {k: v for k, v in plain.items() if v is not None}}
    event_rows = {row["event_id"]: {k: _plain(row[k]) for k in EVENT_FIELDS} for row in events.to_dict("records")}
    return lead_rows, event_rows


def as_sent(batch: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """A batch's leads and events by id, every field given (None where not sent), numbers as floats."""
    leads = {
        lead["lead_id"]: {**lead, "attributes": {k: _plain(v) for k, v in lead["attributes"].items()}}
        for lead in batch["leads"]
    }
    events = {e["event_id"]: {k: _plain(e.get(k)) for k in EVENT_FIELDS} for e in batch["events"]}
    return leads, events


def test_a_sigkill_mid_ingest_leaves_each_batch_whole_or_absent_and_stores_what_was_sent(store_url, make_server):
    server = make_server(store_url)
    acknowledged: set[int] = set()
    stop = threading.Event()

    def crm(first: int) -> None:  # three CRMs at once, so that several batches are in flight at the kill
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            for b in range(first, len(CRASH_BATCHES), 3):
                if stop.is_set():
                    return
                try:
                    response = client.post("/api/v1/events", json=CRASH_BATCHES[b], headers=HEADERS)
                except httpx.TransportError:
                    continue
                if response.status_code == 200:
                    acknowledged.add(b)

    senders = [threading.Thread(target=crm, args=(first,)) for first in range(3)]
    for t in senders:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 10 and any(t.is_alive() for t in senders) and time.monotonic() < deadline:
        time.sleep(0.002)
    server.kill()  # mid-stream: requests are in flight
    stop.set()
    for t in senders:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in senders)
    assert 10 <= len(acknowledged) < len(CRASH_BATCHES), "the kill should land during ingestion"

    leads, events = stored_content(store_url)
    whole = set()
    for b, batch in enumerate(CRASH_BATCHES):
        sent_leads, sent_events = as_sent(batch)
        present = {i in leads for i in sent_leads} | {i in events for i in sent_events}
        assert len(present) == 1, f"batch {b} is partly stored"
        if present == {True}:
            whole.add(b)
            assert {i: leads[i] for i in sent_leads} == sent_leads
            assert {i: events[i] for i in sent_events} == sent_events
    assert acknowledged <= whole
    assert set(leads) | set(events) <= {i for batch in CRASH_BATCHES for part in as_sent(batch) for i in part}

    server.start()  # same database, new process: the CRMs resend what was not acknowledged
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        for b in sorted(set(range(len(CRASH_BATCHES))) - acknowledged):
            response = post_with_retries(client, CRASH_BATCHES[b])
            assert response.status_code == 200, response.text
    leads, events = stored_content(store_url)
    assert leads == {i: row for batch in CRASH_BATCHES for i, row in as_sent(batch)[0].items()}
    assert events == {i: row for batch in CRASH_BATCHES for i, row in as_sent(batch)[1].items()}


def test_moving_the_champion_alias_under_load_fails_no_request_and_labels_each_answer_right(
    tmp_path, make_server, model_registry, crm_sample
):
    from leadscore import registry
    from leadscore.features.builder import build_features

    registry.promote("1", uri=model_registry)
    env = {"LEADSCORE_MLFLOW_TRACKING_URI": model_registry, "LEADSCORE_MODEL_POLL_SECONDS": "0.2"}
    server = make_server(f"sqlite:///{tmp_path / 'leadscore.db'}", env)
    features = build_features(crm_sample.leads, crm_sample.events, "2024-10-01T00:00:00Z").head(20)
    own = {}  # each version's own probabilities for these leads
    for version in ("1", "2"):
        model, _ = registry.load_version(version, model_registry)
        probabilities = model.predict_proba(features[model.feature_names_in_])[:, 1]
        own[version] = dict(zip(features["lead_id"], probabilities, strict=True))
    assert max(abs(own["1"][i] - own["2"][i]) for i in own["1"]) > 0.01, "the versions must be told apart"
    body = {"dataframe_records": json.loads(features.drop(columns="cutoff").to_json(orient="records"))}
    headers = {"X-API-Key": "all-key"}
    outcomes: list[tuple[int, str | None]] = []
    answers: list[dict] = []
    stop = threading.Event()

    def crm() -> None:
        with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
            for _ in range(2000):  # bounded; normally stopped much earlier
                if stop.is_set():
                    return
                try:
                    response = client.post("/api/v1/scores", json=body, headers=headers)
                except httpx.TransportError as err:
                    outcomes.append((0, repr(err)))
                    continue
                if response.status_code == 200:
                    answers.append(response.json())
                    outcomes.append((200, answers[-1]["model_version"]))
                else:
                    outcomes.append((response.status_code, response.text))

    def seen(version: str, deadline_s: float = 30.0) -> bool:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if any(v == version for _, v in outcomes[-20:]):
                return True
            time.sleep(0.05)
        return False

    threads = [threading.Thread(target=crm) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        assert seen("1")
        for version in ("2", "1", "2"):
            registry.promote(version, uri=model_registry)
            assert seen(version), f"the service never switched to version {version}"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        registry.promote("1", uri=model_registry)

    assert not any(t.is_alive() for t in threads), "a client never finished"
    failures = [o for o in outcomes if o[0] != 200]
    assert not failures, failures[:5]
    assert {v for _, v in outcomes} == {"1", "2"}
    # Each answer was computed by the version it names: its probabilities are that version's own.
    for answer in answers:
        version = answer["model_version"]
        assert [s["model_version"] for s in answer["scores"]] == [version] * len(features)
        served = {s["lead_id"]: s["probability"] for s in answer["scores"]}
        assert served == pytest.approx(own[version], rel=0, abs=1e-9), f"answer labelled {version}"
