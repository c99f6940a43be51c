"""How many OpenMP threads model fitting uses: one, unless ``LEADSCORE_THREADS`` says otherwise.

Gradient boosting's OpenMP threads wait for each other at every tree node. When any other process holds a core,
that waiting makes a fit many times slower (measured here: 89 s with 2 threads against 12 s with one for the
same fit at a load average of 9 on 2 cores; and a whole `leadscore train` that started on an idle machine took
133 s with 2 threads once neighbours woke up, against 46 to 65 s with one). A machine that also serves the API
is never idle, and one thread per fit keeps training time predictable; set ``LEADSCORE_THREADS`` to use more
on a dedicated machine.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from threadpoolctl import threadpool_limits

DEFAULT_THREADS = 1


def fit_threads() -> int:
    """``LEADSCORE_THREADS`` if set, else 1.

    Examples
    --------
    >>> import os
    >>> os.environ["LEADSCORE_THREADS"] = "2"; fit_threads()
    2
    >>> del os.environ["LEADSCORE_THREADS"]; fit_threads()
    1
    """
    return _threads_from_environment("LEADSCORE_THREADS", DEFAULT_THREADS)


def _threads_from_environment(variable: str, default: int) -> int:
    configured = os.environ.get(variable)
    if configured:
        try:
            return max(1, int(configured))
        except ValueError as err:
            raise ValueError(f"{variable} must be a whole number, got {configured!r}") from err
    return default


def limited_threads() -> AbstractContextManager:
    """A context in which OpenMP (and BLAS) use :func:`fit_threads` threads."""
    return threadpool_limits(limits=fit_threads())


def scoring_threads() -> int:
    """Threads that score one large batch: ``LEADSCORE_SCORING_THREADS`` if set, else up to 2 (the cores).

    Unlike model fitting, scoring splits its trees over Python threads (the tree routine releases the GIL), not
    OpenMP: a busy core only delays the thread on it, with no spinning barrier, so the split costs nothing
    when the machine is loaded and halves the time when it is not.
    """
    return _threads_from_environment("LEADSCORE_SCORING_THREADS", max(1, min(2, os.cpu_count() or 1)))


@functools.cache
def scoring_pool() -> ThreadPoolExecutor | None:
    """The process's pool for :func:`scoring_threads` (None for one thread), made on first use."""
    threads = scoring_threads()
    return ThreadPoolExecutor(threads, thread_name_prefix="leadscore-score") if threads > 1 else None


# A forked child has none of its parent's threads: it makes its own pool.
os.register_at_fork(after_in_child=scoring_pool.cache_clear)
