"""A small cache for the scored table of open leads, which is costly to build and asked for often.

Entries are keyed by what the table depends on (model version, the store's generation, the cutoff asked for)
and expire after ``ttl_s`` (cachetools' ``TTLCache``); ingestion through this process bumps the generation, so
it is rebuilt on the next request. Other processes writing to the same store are seen when the entry expires.
A table is built once per key: concurrent requests for the key being built wait for it instead of repeating it
(cachetools' ``condition``), while requests for other keys are answered meanwhile; no lock is held during a
build.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache, cached

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
        self._tables: TTLCache[Hashable, Any] = TTLCache(maxsize=MAX_ENTRIES, ttl=ttl_s)
        # The key holds the generation, so a build that was running when the store changed is kept under the
        # old generation, where no request looks any more.
        self._get = cached(
            self._tables,
            key=lambda key, build: (self.generation, key),
            condition=threading.Condition(),
        )(lambda key, build: build())

    def invalidate(self) -> None:
        """The store changed: rebuild on the next request."""
        self.generation += 1
        self._get.cache_clear()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The table for ``key``, built by ``build()`` if absent or expired."""
        return self._get(key, build)
