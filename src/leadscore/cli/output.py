"""What the commands print for programs: JSON with non-finite numbers as null (JSON has no NaN)."""

from __future__ import annotations

import json
import math
from typing import Any


def json_ready(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, through dicts, lists and tuples.

    Examples
    --------
    >>> json_ready({"auc": float("nan"), "lift": [1.5, float("inf")]})
    {'auc': None, 'lift': [1.5, None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Print ``value`` as one line of JSON, non-finite numbers as null."""
    print(json.dumps(json_ready(value)))
