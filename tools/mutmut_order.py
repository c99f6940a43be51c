"""A pytest plugin for `make mutate`: the fast, hand-computed tests first, and fewer Hypothesis examples.

mutmut runs, per mutant, the tests that call the mutated function with ``-x``, in no particular order. Most
mutants are killed by a hand-built example in well under a second; running the Hypothesis properties (seconds
each) first would spend that time on every killed mutant. Loaded with ``-p tools.mutmut_order`` from
``[tool.mutmut] pytest_add_cli_args``; the order changes no verdict.

A surviving mutant runs every property to the end, so the properties dominate the run time: with
``MUTMUT_MAX_EXAMPLES`` set (``make mutate`` sets it, 20 by default), each property tries at most that many examples
(a fixed seed: ``--hypothesis-seed=0``) and does not shrink a failing one: one failure kills the mutant, and
shrinking it can take minutes. ``make test`` runs them in full.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import Phase, settings


def _is_property(item: pytest.Item) -> bool:
    return bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    cap = int(os.environ.get("MUTMUT_MAX_EXAMPLES", "0"))
    for item in items:
        test = getattr(item, "obj", None)
        chosen = getattr(test, "_hypothesis_internal_use_settings", None)  # what @settings set on the test
        if cap > 0 and chosen is not None and chosen.max_examples > cap:
            phases = tuple(p for p in chosen.phases if p not in (Phase.shrink, Phase.explain))
            test._hypothesis_internal_use_settings = settings(chosen, max_examples=cap, phases=phases)
    items.sort(key=lambda item: (_is_property(item), str(item.location[0]), item.location[1] or 0))
