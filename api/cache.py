"""A small cache for the scored table of open leads, which is costly to build and asked for often.

Entries are keyed by what the table depends on (model version, the store's generation, the cutoff asked for)
and expire after ``ttl_s``; ingestion through this process bumps the generation, so it is rebuilt on the next
request. Other processes writing to the same store are seen when the entry expires. One build runs at a time:
concurrent requests wait for it instead of repeating it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

MAX_ENTRIES = 4


class ScoredTableCache:
    """Builds and keeps a few tables, each for ``ttl_s`` seconds.

    Examples
    --------
    >>> cache = ScoredTableCache(ttl_s=60)
    >>> cache.get(("v1", None), lambda: "built")
    'built'
    >>> cache.get(("v1", None), lambda: "built again")
    'built'
    >>> cache.invalidate()
    >>> cache.get(("v1", None), lambda: "built again")
    'built again'
    """

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self.generation = 0
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """The store changed: rebuild on the next request."""
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The table for ``key``, built by ``build()`` if absent or expired."""
        with self._lock:
            full_key = (self.generation, key)
            hit = self._entries.get(full_key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
            value = build()
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)))
            self._entries[full_key] = (time.monotonic(), value)
            return value
