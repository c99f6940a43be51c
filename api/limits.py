"""Request size limits, checked by pure ASGI middleware before a route parses anything.

- :class:`QueryLimitMiddleware`: a query string over :data:`MAX_QUERY_BYTES` is a 414, one of more than
  :data:`MAX_QUERY_PARAMETERS` parameters a 422, both counted on the raw bytes (no route takes more than a
  handful, and parsing thousands of them was the costly part of refusing them);
- :class:`BodySizeLimitMiddleware`: a body larger than ``LEADSCORE_MAX_REQUEST_BYTES`` is a 413. The declared
  ``Content-Length`` is checked before anything is read; a body without one (chunked) is counted as it streams in
  and refused as soon as it passes the limit.

Either way the route never runs. Both sit behind the API-key check (:class:`leadscore.api.security.KeyGate`), so a
request without a valid key is a 401 whatever its size. Batch-size limits (rows per request) are checked by the
routes, which know what a row is.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadscore.api.errors import problem_body
from leadscore.data.records import to_json

#: The longest query string accepted, in bytes: twice what the longest valid query needs (four text filters of
#: 200 characters, each up to 4 bytes of UTF-8 written as 3 characters per byte: under 8 kB).
MAX_QUERY_BYTES = 16 * 1024
#: The most query parameters accepted in one request: no route takes more than a handful.
MAX_QUERY_PARAMETERS = 50


class QueryLimitMiddleware:
    """Pure ASGI middleware refusing a query string over ``max_bytes`` (414) or of more than ``max_parameters``
    parameters (422), each answer naming the limit.

    Examples
    --------
    >>> QueryLimitMiddleware(app=None).max_parameters == MAX_QUERY_PARAMETERS
    True
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_QUERY_BYTES, max_parameters: int = MAX_QUERY_PARAMETERS):
        self.app = app
        self.max_bytes = max_bytes
        self.max_parameters = max_parameters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (query := scope.get("query_string", b"")):
            if len(query) > self.max_bytes:
                detail = (
                    f"query string of {len(query)} bytes exceeds the limit of {self.max_bytes} bytes: "
                    "no route takes more than a few parameters"
                )
                await send_json(send, 414, {"detail": detail})
                return
            count = query.count(b"&") + 1  # as Starlette splits them; counted in C, never parsed
            if count > self.max_parameters:
                message = f"{count} query parameters; at most {self.max_parameters} are accepted in one request"
                problem = {"loc": ["query"], "msg": message, "type": "value_error"}
                await send_json(send, 422, problem_body([problem], 1))
                return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """Pure ASGI middleware refusing request bodies over ``max_bytes`` with a JSON 413 that names the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await send_json(send, 400, {"detail": "the Content-Length header is not a non-negative integer"})
            return
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send, declared)
            return

        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._too_large(send, None)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break

        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _too_large(self, send: Send, size: int | None) -> None:
        what = f"request body of {size} bytes" if size is not None else "request body"
        detail = (
            f"{what} exceeds the limit of {self.max_bytes} bytes (LEADSCORE_MAX_REQUEST_BYTES): send smaller batches"
        )
        await send_json(send, 413, {"detail": detail})


def _content_length(scope: Scope) -> int | None:
    """The declared body length, None if not declared, -1 if malformed."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None


async def send_json(send: Send, status: int, content: Any, headers: dict[str, str] | None = None) -> None:
    """Answer a request from middleware: ``content`` as JSON with ``status`` (and ``headers``)."""
    body = to_json(content)
    extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
