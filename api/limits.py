"""Request size limit: a body larger than ``LEADSCORE_MAX_REQUEST_BYTES`` is refused with 413.

The declared ``Content-Length`` is checked before anything is read; a body without one (chunked) is counted as
it streams in and refused as soon as it passes the limit. Either way the route never runs. Batch-size limits
(rows per request) are checked by the routes, which know what a row is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadscore.data.records import to_json

#: The longest query string accepted, in bytes: no route's parameters come near it.
MAX_QUERY_BYTES = 4096
#: The most query parameters accepted in one request: no route takes more than a handful.
MAX_QUERY_PARAMETERS = 50


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
            await _json(send, 400, "the Content-Length header is not a non-negative integer")
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
        await _json(
            send,
            413,
            f"{what} exceeds the limit of {self.max_bytes} bytes (LEADSCORE_MAX_REQUEST_BYTES): send smaller batches",
        )


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


async def _json(send: Send, status: int, detail: str) -> None:
    body = to_json({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
