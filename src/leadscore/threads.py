"""How many OpenMP threads model fitting uses: one, unless ``LEADSCORE_THREADS`` says otherwise.

Gradient boosting's OpenMP threads wait for each other at every tree node. When any other process holds a core,
that waiting makes a fit many times slower (measured here: 89 s with 2 threads against 12 s with one for the
same fit at a load average of 9 on 2 cores; and a whole `leadscore train` that started on an idle machine took
133 s with 2 threads once neighbours woke up, against 46 to 65 s with one). A machine that also serves the API
is never idle, and one thread per fit keeps training time predictable; set ``LEADSCORE_THREADS`` to use more
on a dedicated machine.
"""

from __future__ import annotations

import os
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
    configured = os.environ.get("LEADSCORE_THREADS")
    if configured:
        try:
            return max(1, int(configured))
        except ValueError as err:
            raise ValueError(f"LEADSCORE_THREADS must be a whole number, got {configured!r}") from err
    return DEFAULT_THREADS


def limited_threads() -> AbstractContextManager:
    """A context in which OpenMP (and BLAS) use :func:`fit_threads` threads."""
    return threadpool_limits(limits=fit_threads())
