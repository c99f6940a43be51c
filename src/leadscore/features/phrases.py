"""How to say a feature's value to a salesperson: each helper returns a ``say(value) -> str`` for the catalogue.

Every ``say`` handles a missing value too (None, NaN, ``pd.NA``, ``pd.NaT``), with the text it was given for it.

Examples
--------
>>> count("call", "calls", "in the last 30 days")(1)
'1 call in the last 30 days'
>>> ago("last reply", "no replies yet")(float("nan"))
'no replies yet'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from leadscore.data.contracts import STAGES


def is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value)) or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def number(value: float, digits: int = 1) -> str:
    """Whole numbers without decimals, others rounded to ``digits``."""
    value = float(value)
    if value == round(value):
        return str(int(round(value)))
    return f"{value:.{digits}f}"


def count(singular: str, plural: str, when: str) -> Callable[[object], str]:
    def say(value: object) -> str:
        if is_missing(value):
            return f"{plural} {when}: unknown"
        n = float(value)  # type: ignore[arg-type]
        noun = singular if n == 1 else plural
        return f"{number(n)} {noun} {when}" if n else f"no {plural} {when}"

    return say


def ago(what: str, missing_text: str) -> Callable[[object], str]:
    def say(value: object) -> str:
        if is_missing(value):
            return missing_text
        days = float(value)  # type: ignore[arg-type]
        if days < 1:
            return f"{what} less than a day ago"
        return f"{what} {number(days, 0)} day{'s' if round(days) != 1 else ''} ago"

    return say


def days(template: str, missing_text: str) -> Callable[[object], str]:
    def say(value: object) -> str:
        if is_missing(value):
            return missing_text
        days = float(value)  # type: ignore[arg-type]
        n = number(days, 0) if days >= 1 else "less than 1"
        return template.format(n=n, s="s" if days >= 1 and round(days) != 1 else "")

    return say


def rate(template: str, missing_text: str) -> Callable[[object], str]:
    def say(value: object) -> str:
        if is_missing(value):
            return missing_text
        return template.format(pct=f"{100 * float(value):.0f}%")  # type: ignore[arg-type]

    return say


def flag(yes: str, no: str) -> Callable[[object], str]:
    def say(value: object) -> str:
        if is_missing(value):
            return f"unknown whether {yes}"
        return yes if float(value) else no  # type: ignore[arg-type]

    return say


def quantity(template: str, missing_text: str, digits: int = 1) -> Callable[[object], str]:
    def say(value: object) -> str:
        if is_missing(value):
            return missing_text
        return template.format(v=number(float(value), digits))  # type: ignore[arg-type]

    return say


def category(template: str, missing_text: str) -> Callable[[object], str]:
    def say(value: object) -> str:
        if is_missing(value) or str(value) == "":
            return missing_text
        if isinstance(value, int | float) and not isinstance(value, bool):  # numpy numbers included
            value = number(value)
        return template.format(v=value)

    return say


def momentum(value: object) -> str:
    if is_missing(value):
        return "activity trend unknown"
    ratio = float(value)  # type: ignore[arg-type]
    if ratio >= 1.05:
        return f"activity up {ratio:.1f}x on the previous 30 days"
    if ratio <= 0.95:
        return f"activity down to {ratio:.1f}x of the previous 30 days"
    return "activity steady against the previous 30 days"


def stage_rank(prefix: str) -> Callable[[object], str]:
    def say(value: object) -> str:
        if is_missing(value):
            return f"{prefix}: unknown"
        rank = int(float(value))  # type: ignore[arg-type]
        name = STAGES[rank] if 0 <= rank < len(STAGES) else str(rank)
        return f"{prefix}: {name} ({rank + 1} of {len(STAGES)})"

    return say
