"""What the commands print for programs: one line of JSON, non-finite numbers as null (JSON has no NaN)."""

from __future__ import annotations

from typing import Any

from leadscore.data.records import to_json


def print_json(value: Any) -> None:
    """Print ``value`` as one line of JSON, non-finite numbers as null and numpy values as numbers.

    Examples
    --------
    >>> print_json({"auc": float("nan"), "lift": [1.5, float("inf")]})
    {"auc":null,"lift":[1.5,null]}
    """
    print(to_json(value).decode())
