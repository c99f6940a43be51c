"""A pytest plugin for `make mutate`: run the fast, hand-computed tests before the Hypothesis properties.

mutmut runs, per mutant, the tests that call the mutated function with ``-x``, in no particular order. Most
mutants are killed by a hand-built example in well under a second; running the Hypothesis properties (seconds
each) first would spend that time on every killed mutant. Loaded with ``-p tools.mutmut_order`` from
``[tool.mutmut] pytest_add_cli_args``; it only reorders, so every verdict is the same as without it.
"""

from __future__ import annotations

import pytest


def _is_property(item: pytest.Item) -> bool:
    return bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: (_is_property(item), str(item.location[0]), item.location[1] or 0))
