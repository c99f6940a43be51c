"""JSON request bodies parsed with orjson instead of the standard library.

FastAPI reads a JSON body with ``json.loads`` before validating it; for a batch of a thousand feature rows that
parse alone cost more than scoring them (5 ms against 1.5 ms with orjson, measured on 390 kB). Routers that take
large bodies use :class:`OrjsonRoute`.

A body orjson refuses is read again by ``json.loads``, so that the validation that follows names the field and
row of what orjson refused instead of a character position: a lone surrogate such as ``"\\ud800"``, and the
numbers no model can use (``NaN``, ``Infinity``, ``1e400``, an integer too big for a float). Those numbers are
read as :class:`UnusableNumber`, which no field accepts (as Python's own floats they would be infinities or
NaN, and a NaN in a feature row could not be told from a null). Two refusals are final: a body nested deeper than
orjson's 1024 levels (``json.loads`` would recurse until Python's stack runs out), and a body neither can read;
both are FastAPI's 422 naming the position.

:func:`json_response` is the other direction, for the scoring route's large answers: the rows go straight to
orjson instead of being validated again against the response model (which a thousand scores made cost as much
as computing them). The route keeps its ``response_model`` for the OpenAPI description, and the tests check
that the answers match it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from leadscore.data.records import to_json


class UnusableNumber:
    """A JSON number no model can use, as the client wrote it: ``NaN``, ``Infinity``, ``-1e400``, ``9`` * 400.

    Examples
    --------
    >>> loads(b'[1.5, NaN, 1e400, -Infinity]')
    [1.5, NaN, 1e400, -Infinity]
    >>> type(loads(b'[NaN]')[0]).__name__
    'UnusableNumber'
    """

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _float(text: str) -> float | UnusableNumber:
    number = float(text)
    return number if math.isfinite(number) else UnusableNumber(text)


def _int(text: str) -> int | UnusableNumber:
    try:
        number = int(text)
        float(number)  # as orjson: an integer must fit a float
    except (ValueError, OverflowError):  # ValueError: past Python's limit of 4300 digits
        return UnusableNumber(text)
    return number


#: orjson's message for a body nested deeper than it reads (1024 levels).
_TOO_DEEP = "depth limit exceeded"


def _too_deep(doc: str, pos: int) -> json.JSONDecodeError:
    return json.JSONDecodeError("nested deeper than 1024 levels, the most the service reads", doc, pos)


def loads(body: bytes) -> Any:
    """A JSON body as Python values: orjson's reading, or, for what orjson refuses, Python's with the numbers
    no model can use read as :class:`UnusableNumber` (see the module notes).

    Raises a ``json.JSONDecodeError`` with the position for a body that is not JSON or is nested too deeply.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        if _TOO_DEEP in err.msg:
            raise _too_deep(err.doc, err.pos) from None
        try:
            return json.loads(body, parse_float=_float, parse_int=_int, parse_constant=UnusableNumber)
        except RecursionError:  # deeply nested, past what orjson refused first (e.g. a lone surrogate)
            raise _too_deep(err.doc, 0) from None


class OrjsonRequest(Request):
    """A request whose ``json()`` is parsed by :func:`loads` (orjson first)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class OrjsonRoute(APIRoute):
    """A route that hands its endpoint an :class:`OrjsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return route_handler


def json_response(content: Any, status_code: int = 200) -> Response:
    """``content`` as a JSON response, written by :func:`leadscore.data.records.to_json` (numpy numbers,
    non-finite numbers as null, timestamps in UTC with a ``Z``)."""
    return Response(to_json(content), status_code=status_code, media_type="application/json")
