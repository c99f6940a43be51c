"""Ingestion against a real uvicorn server on loopback: concurrent clients with retries, and a crash.

Bounded loops throughout: a few clients, a few batches each, timeouts on every request.
"""

from __future__ import annotations

import json
import random
import threading
import time

import httpx
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

    assert not failures, failures
    stored = stored_event_ids(store_url)
    assert len(stored) == len(set(stored)) == len(sent)
    assert set(stored) == sent


def test_every_acknowledged_event_survives_a_sigkill_of_the_server(store_url, make_server):
    server = make_server(store_url)
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        leads = [lead(f"L{i:03d}") for i in range(N_LEADS)]
        assert client.post("/api/v1/leads", json={"leads": leads}, headers=HEADERS).status_code == 200

    acknowledged: list[str] = []
    unacknowledged: list[dict] = []
    stop = threading.Event()

    def crm() -> None:
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            for start in range(0, len(UNIVERSE), 20):
                batch = UNIVERSE[start : start + 20]
                if stop.is_set():
                    unacknowledged.extend(batch)
                    continue
                try:
                    response = client.post("/api/v1/events", json={"events": batch}, headers=HEADERS)
                except httpx.TransportError:
                    unacknowledged.extend(batch)
                    continue
                if response.status_code == 200:
                    acknowledged.extend(e["event_id"] for e in batch)
                else:
                    unacknowledged.extend(batch)

    sender = threading.Thread(target=crm)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 200 and sender.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()  # mid-stream: requests are in flight
    stop.set()
    sender.join(timeout=60)
    assert 200 <= len(acknowledged) < len(UNIVERSE), "the kill should land during ingestion"

    assert set(acknowledged) <= set(stored_event_ids(store_url))

    server.start()  # same database, new process: the CRM resends what was not acknowledged
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        for start in range(0, len(unacknowledged), 50):
            response = post_with_retries(client, {"events": unacknowledged[start : start + 50]})
            assert response.status_code == 200, response.text
    stored = stored_event_ids(store_url)
    assert len(stored) == len(set(stored)) == len(UNIVERSE)


def test_moving_the_champion_alias_under_load_fails_no_request(tmp_path, make_server, model_registry, crm_sample):
    from leadscore import registry
    from leadscore.features.builder import build_features

    registry.promote("1", uri=model_registry)
    env = {"LEADSCORE_MLFLOW_TRACKING_URI": model_registry, "LEADSCORE_MODEL_POLL_SECONDS": "0.2"}
    server = make_server(f"sqlite:///{tmp_path / 'leadscore.db'}", env)
    features = build_features(crm_sample.leads, crm_sample.events, "2024-10-01T00:00:00Z").head(20)
    body = {"dataframe_records": json.loads(features.drop(columns="cutoff").to_json(orient="records"))}
    headers = {"X-API-Key": "all-key"}
    outcomes: list[tuple[int, str | None]] = []
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
                version = response.json().get("model_version") if response.status_code == 200 else response.text
                outcomes.append((response.status_code, version))

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

    failures = [o for o in outcomes if o[0] != 200]
    assert not failures, failures[:5]
    assert {v for _, v in outcomes} == {"1", "2"}
