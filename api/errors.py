"""Exception handlers: every bad input becomes a 4xx whose body says what is wrong and where.

- a request that does not fit the schema, or rows that break a data contract → 422, each problem with its
  ``loc`` (``["body", "events", 3, "at"]``, 0-based list indexes) and ``msg``;
- event ids already stored with other content → 409 naming the ids and the differing fields;
- no model to score with → 503 saying how to train one;
- a database that is busy or unreachable → 503 with ``Retry-After``;
- anything else → 500 with a reference to the logged traceback (a bug, never the client's fault).

:func:`error_responses` describes those answers for the OpenAPI page, once for every route.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from leadscore.api.champion import NoModelError
from leadscore.api.schemas import ErrorBody, ValidationBody
from leadscore.data.contracts import CONTRACTS, ContractError
from leadscore.store.engine import is_transient
from leadscore.store.errors import EventConflictError, UnknownLeadError

log = logging.getLogger("leadscore.api")

#: At most this many problems are listed in one 422 body.
MAX_PROBLEMS = 100


def error_responses(
    scope: str,
    *,
    body: bool = False,
    model: bool = False,
    invalid: str = "Some values are wrong; nothing was stored.",
    more: Mapping[int, tuple[type, str]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route that needs the API-key ``scope``, for the OpenAPI page.

    Parameters
    ----------
    scope
        The scope the route needs (403 names it).
    body
        The route reads a JSON body: 400 (unreadable) and 413 (over the size or batch limit).
    model
        The route scores: 503 also when there is no model yet.
    invalid
        What a 422 means for this route.
    more
        Answers of this route alone, by status: (body model, description).

    Examples
    --------
    >>> sorted(error_responses("read", more={404: (ErrorBody, "No such lead.")}))
    [401, 403, 404, 414, 422, 503]
    """
    answers: dict[int, tuple[type, str]] = {
        401: (ErrorBody, "No API key, or an unknown one."),
        403: (ErrorBody, f"The API key lacks the `{scope}` scope."),
        414: (ErrorBody, "The query string is longer than any route needs; the body names the limit."),
        422: (ValidationBody, invalid),
        503: (
            ErrorBody,
            "No model yet (the body says how to train one), or the database is busy."
            if model
            else "The database is busy or unreachable; retry.",
        ),
    }
    if body:
        answers[400] = (ErrorBody, "The body could not be read (e.g. it is not UTF-8).")
        answers[413] = (ErrorBody, "The body or the batch is over the limit.")
    answers |= dict(more or {})
    return {status: {"model": schema, "description": text} for status, (schema, text) in sorted(answers.items())}


def problem_body(items: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """The body of a 422: how many problems, and the first :data:`MAX_PROBLEMS` of them with ``loc`` and ``msg``.

    Examples
    --------
    >>> problem_body([{"loc": ["query"], "msg": "too many", "type": "value_error"}], 1)["message"]
    '1 problem(s) in the request; nothing was stored'
    """
    more = f" (first {MAX_PROBLEMS} shown)" if total > MAX_PROBLEMS else ""
    return {"message": f"{total} problem(s) in the request{more}; nothing was stored", "detail": items}


class RequestProblem(ValueError):
    """A request value the schema could not rule out but the service cannot use: a 422 at ``loc``."""

    def __init__(self, loc: list[str | int], msg: str):
        self.loc = loc
        self.msg = msg
        super().__init__(msg)


async def request_problem(_request: Request, exc: RequestProblem) -> JSONResponse:
    return JSONResponse(problem_body([{"loc": exc.loc, "msg": exc.msg, "type": "value_error"}], 1), status_code=422)


async def no_model(_request: Request, exc: NoModelError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})


def _message(error: Mapping[str, Any]) -> str:
    # FastAPI says only "JSON decode error" for a body it cannot read, and keeps the reason in the context.
    reason = (error.get("ctx") or {}).get("error") if error["type"] == "json_invalid" else None
    return f"{error['msg']}: {reason}" if reason else error["msg"]


async def request_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    items = [
        {"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())], "msg": _message(e), "type": e["type"]}
        for e in errors[:MAX_PROBLEMS]
    ]
    return JSONResponse(problem_body(items, len(errors)), status_code=422)


def contract_problem_items(exc: ContractError) -> tuple[list[dict[str, Any]], int]:
    """Contract problems as ``loc``/``msg`` items, one per offending row (rows are 1-based in problems)."""
    items: list[dict[str, Any]] = []
    total = 0
    for problem in exc.problems:
        contract = CONTRACTS.get(problem.table)
        column = problem.column
        if column is None:
            field: list[str | int] = []
        elif contract is not None and problem.table == "leads" and column not in contract.names:
            field = ["attributes", column]  # extra lead columns arrive as attributes
        else:
            field = [column]
        rows = problem.rows or (None,)
        total += len(rows)
        for row in rows:
            if len(items) >= MAX_PROBLEMS:
                break
            where: list[str | int] = ["body", problem.table]
            if row is not None:
                where.append(row - 1)
            items.append({"loc": where + field, "msg": problem.message, "type": "contract"})
    return items, total


async def contract_error(_request: Request, exc: ContractError) -> JSONResponse:
    items, total = contract_problem_items(exc)
    return JSONResponse(problem_body(items, total), status_code=422)


async def event_conflict(_request: Request, exc: EventConflictError) -> JSONResponse:
    body = {
        "detail": str(exc),
        "conflicts": [{"event_id": c.event_id, "fields": list(c.fields)} for c in exc.conflicts],
    }
    return JSONResponse(body, status_code=409)


async def unknown_lead(_request: Request, exc: UnknownLeadError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def database_error(request: Request, exc: sa.exc.DBAPIError) -> JSONResponse:
    if is_transient(exc) or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse(
            {"detail": "the database is busy or unreachable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, sa.exc.DataError):
        first_line = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
        problem = {"loc": ["body"], "msg": f"the database refused a value: {first_line}", "type": "value_error"}
        return JSONResponse(problem_body([problem], 1), status_code=422)
    if isinstance(exc, sa.exc.IntegrityError):
        # Validation catches these first; a concurrent change can still get here. Retrying is safe.
        return JSONResponse(
            {"detail": "the request conflicts with stored data changed concurrently; retry"}, status_code=409
        )
    return await unexpected_error(request, exc)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": f"internal error (reference {reference}); this is a bug"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, request_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ContractError, contract_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestProblem, request_problem)  # type: ignore[arg-type]
    app.add_exception_handler(NoModelError, no_model)  # type: ignore[arg-type]
    app.add_exception_handler(EventConflictError, event_conflict)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownLeadError, unknown_lead)  # type: ignore[arg-type]
    app.add_exception_handler(sa.exc.DBAPIError, database_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_error)
