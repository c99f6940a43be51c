"""Request bodies to what the library takes: frames of the data contracts, typed feature arrays, limits.

What the ingestion and scoring routes share: each route parses its body with these, calls the library and
shapes the answer (:mod:`leadscore.api.responses`).
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from fastapi import HTTPException, status
from pydantic import BaseModel

from leadscore.api.errors import RequestProblem
from leadscore.api.fast_json import UnusableNumber
from leadscore.api.schemas import EventIn, LeadIn
from leadscore.api.score_schemas import ScoreRequest, ScoringEventIn
from leadscore.data.contracts import EVENTS, LEADS

#: The longest text a feature value may be, as any text field of the API (the model saw nothing longer).
MAX_TEXT_CHARACTERS = 2000


def check_batch(kind: str, count: int, limit: int) -> None:
    """Refuse a batch of more than ``limit`` rows with a 413 that names the limit."""
    if count > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"{count} {kind} in one request; the limit is {limit} (LEADSCORE_MAX_BATCH_SIZE): split the batch",
        )


def rows_frame(rows: Sequence[BaseModel], columns: list[str]) -> pd.DataFrame:
    """Pydantic rows as a frame of ``columns`` (each row's attribute of that name)."""
    return pd.DataFrame({c: [getattr(r, c) for r in rows] for c in columns}, columns=columns)


def leads_frame(leads: list[LeadIn], attributes: Sequence[str] = ()) -> pd.DataFrame | None:
    """Leads as a frame of the leads contract, with the named ``attributes`` (a model's selection) as extra
    columns: never a column for every attribute name the leads carry, so a batch of sparse custom fields costs
    leads x selection, not leads x every name sent."""
    if not leads:
        return None
    frame = rows_frame(leads, LEADS.names)
    for name in attributes:
        values = [lead.attributes.get(name) for lead in leads]
        if any(v is not None for v in values):  # one no lead carries is reported missing, not made up
            frame[name] = values
    return frame


def lead_attributes(leads: list[LeadIn]) -> list[dict[str, Any]] | None:
    """Each lead's attributes as sent, for the store (which keeps them as one JSON object per lead)."""
    return [lead.attributes for lead in leads] if leads else None


def events_frame(events: list[EventIn]) -> pd.DataFrame | None:
    """Events as a frame of the events contract."""
    return rows_frame(events, EVENTS.names) if events else None


def scoring_events_frame(events: list[ScoringEventIn]) -> pd.DataFrame | None:
    """Events as a frame of the events contract; events sent without an id get ``<lead_id>#<position>``."""
    if not events:
        return None
    frame = pd.DataFrame({c: [getattr(e, c) for e in events] for c in EVENTS.names}, columns=EVENTS.names)
    missing = frame["event_id"].isna()
    if missing.any():
        generated = frame["lead_id"].astype(str) + "#" + pd.Series(np.arange(len(frame)), index=frame.index).astype(str)
        frame["event_id"] = frame["event_id"].where(~missing, generated)
    return frame


def feature_rows(body: ScoreRequest, kinds: dict[str, str]) -> tuple[dict[str, np.ndarray], list[Any]]:
    """The request's feature rows as arrays by column, typed for the model, and the rows' lead ids (their
    positions when no ``lead_id`` is sent); 422 naming any cell that cannot be used.

    Numeric features are converted in one numpy call for the whole block (a per-column pandas conversion costs
    more than scoring a small batch); only when that fails is the offending cell looked for. No frame is built:
    the scorer reads the arrays.
    """
    if body.dataframe_split is not None:
        field = "dataframe_split"
        columns = body.dataframe_split.columns
        position = {name: i for i, name in enumerate(columns)}
        rows: list[Any] = body.dataframe_split.data
        by_column = list(zip(*rows, strict=True)) if rows else [() for _ in columns]  # one pass over the rows

        def column(name: str) -> Sequence[Any]:
            return by_column[position[name]]

        present = set(columns)
    else:
        field = "dataframe_records"
        rows = body.dataframe_records or []
        present = set().union(*(row.keys() for row in rows)) if rows else set()
        columns = list(present)

        def column(name: str) -> Sequence[Any]:
            return [row.get(name) for row in rows]

    missing = [name for name in kinds if name not in present]
    if missing:
        where: list[str | int] = ["body", field, "columns"] if field == "dataframe_split" else ["body", field, 0]
        more = " ..." if len(missing) > 20 else ""
        raise RequestProblem(
            where,
            f"missing feature column(s) {missing[:20]}{more}; the model needs {len(kinds)} features "
            "(GET /api/v1/model lists them)",
        )
    numeric = [name for name, kind in kinds.items() if kind == "numeric"]
    values = [column(name) for name in numeric]
    try:
        block = np.array(values, dtype="float64").reshape(len(numeric), len(rows)).T
        if np.isinf(block).any():
            raise ValueError("infinite value")
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too big for a float
        _raise_bad_number(field, numeric, values, columns)
    typed: dict[str, np.ndarray] = dict(zip(numeric, block.T, strict=True))
    text_columns = [name for name, kind in kinds.items() if kind != "numeric"]
    if "lead_id" in present:
        text_columns.append("lead_id")
    for name in text_columns:
        raw = column(name)
        try:  # text stays as it is: only the rare other value pays for the check
            cells = [v if type(v) is str or v is None else _scalar_text(v) for v in raw]
        except _NotScalar:
            row = next(i for i, v in enumerate(raw) if isinstance(v, _NOT_SCALAR))
            raise RequestProblem(
                _cell(field, row, name, columns),
                f"feature {name!r} must be a string, number, boolean or null, got {_shown(raw[row])}",
            ) from None
        if max(map(len, filter(None, cells)), default=0) > MAX_TEXT_CHARACTERS:  # C loops, no Python per cell
            row = next(i for i, c in enumerate(cells) if c is not None and len(c) > MAX_TEXT_CHARACTERS)
            raise RequestProblem(
                _cell(field, row, name, columns),
                f"feature {name!r} is {len(cells[row])} characters long; at most {MAX_TEXT_CHARACTERS} characters",
            )
        try:
            "".join(filter(None, cells)).encode("utf-8")
        except UnicodeEncodeError:
            row = next(i for i, c in enumerate(cells) if c is not None and not _encodable(c))
            raise RequestProblem(_cell(field, row, name, columns), "text must be valid Unicode") from None
        typed[name] = np.array(cells, dtype=object)
    ids = typed.pop("lead_id").tolist() if "lead_id" in present else list(range(len(rows)))
    return typed, ids


class _NotScalar(Exception):
    """A feature value that is a list, an object or a number no model can use: no feature is that."""


# Values no feature is: a list, an object, or a number no model can use (NaN, Infinity, 1e400, ...).
_NOT_SCALAR = (list, dict, UnusableNumber)


def _scalar_text(value: Any) -> str:
    if isinstance(value, _NOT_SCALAR):
        raise _NotScalar
    return str(value)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raise_bad_number(field: str, names: list[str], values: list[list[Any]], columns: list[str]) -> None:
    for name, cells in zip(names, values, strict=True):
        for row, cell in enumerate(cells):
            try:
                number = float(cell) if cell is not None else 0.0
            except (TypeError, ValueError, OverflowError):
                number = float("nan")
            if cell is not None and not np.isfinite(number):
                raise RequestProblem(
                    _cell(field, row, name, columns), f"feature {name!r} must be a number, got {_shown(cell)}"
                )
    raise RequestProblem(["body", field], "feature values must be numbers, strings, booleans or null")


_SHORT = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxlong = 2, 4, 4, 40, 40


def _shown(value: Any) -> str:
    """A value as the client sent it, shortened: a 400-digit number or a 900-deep list is named, not echoed."""
    return _SHORT.repr(value)


def _cell(field: str, row: int, name: str, columns: list[str]) -> list[str | int]:
    if field == "dataframe_split":
        return ["body", field, "data", row, columns.index(name)]
    return ["body", field, row, name]


def percentile_mode(model_card: Any, wanted: str) -> str:
    """``reference`` needs the model's reference scores; a model without them ranks within the batch."""
    return wanted if wanted == "batch" or len(getattr(model_card, "reference_quantiles", []) or []) else "batch"


def no_events() -> pd.DataFrame:
    """An empty events table with the contract's required columns."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in EVENTS.required})
