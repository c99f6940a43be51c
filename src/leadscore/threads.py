"""How many OpenMP threads model fitting uses: all cores on an idle machine, one on a busy one.

Gradient boosting's OpenMP threads wait for each other at every tree node. When other processes hold the cores,
that waiting makes a fit tens of times slower (measured here: 89 s with 2 threads against 12 s with one for the
same fit, at a load average of 9 on 2 cores), so a busy machine gets one thread per fit.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager

from threadpoolctl import threadpool_limits

BUSY_LOAD_PER_CORE = 0.75


def fit_threads() -> int | None:
    """``LEADSCORE_THREADS`` if set; 1 when the load average exceeds 0.75 per core; else None (all cores).

    Examples
    --------
    >>> import os
    >>> os.environ["LEADSCORE_THREADS"] = "1"; fit_threads()
    1
    >>> del os.environ["LEADSCORE_THREADS"]
    """
    configured = os.environ.get("LEADSCORE_THREADS")
    if configured:
        return max(1, int(configured))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0] > BUSY_LOAD_PER_CORE * cores
    except OSError:
        busy = False
    return 1 if busy else None


def limited_threads() -> AbstractContextManager:
    """A context in which OpenMP uses :func:`fit_threads` threads."""
    return threadpool_limits(limits=fit_threads(), user_api="openmp")
