"""The scored-table cache: one build per key, and a key being built never holds up the others."""

from __future__ import annotations

import threading
import time

from leadscore.api.cache import ScoredTableCache


def test_concurrent_requests_for_one_key_build_it_once_while_other_keys_are_answered():
    cache = ScoredTableCache(ttl_s=60)
    builds: list[str] = []
    answers: dict[object, object] = {}

    def slow() -> str:
        builds.append("slow")
        time.sleep(0.5)
        return "slow table"

    def ask(name: object, key: str, build) -> None:
        answers[name] = cache.get(key, build)

    waiting = [threading.Thread(target=ask, args=(i, "slow", slow)) for i in range(3)]
    for thread in waiting:
        thread.start()
    time.sleep(0.05)
    start = time.monotonic()
    ask("other", "other", lambda: "other table")
    other_s = time.monotonic() - start
    for thread in waiting:
        thread.join()
    assert builds == ["slow"]
    assert [answers[i] for i in range(3)] == ["slow table"] * 3
    assert answers["other"] == "other table" and other_s < 0.25


def test_a_build_running_when_the_store_changes_is_not_served_afterwards():
    cache = ScoredTableCache(ttl_s=60)
    started = threading.Event()

    def stale() -> str:
        started.set()
        time.sleep(0.2)
        return "stale"

    thread = threading.Thread(target=cache.get, args=("k", stale))
    thread.start()
    started.wait()
    cache.invalidate()
    thread.join()
    assert cache.get("k", lambda: "fresh") == "fresh"
