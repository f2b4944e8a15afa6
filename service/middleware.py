"""A pure ASGI guard of request bodies: the size limit (413 before the body is
parsed; one limit for every path, or a path's own: the outcome batch endpoint
takes larger bodies), and one log line, not a traceback, when the connection
closes before the body is complete (the client went away, or the server's read
deadline closed it: see `service.http_protocol`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .responses import json_response

logger = logging.getLogger("voxroute.http")


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._reject(scope, receive, send, limit)
            return
        body = _BodyProgress()
        try:
            await self.app(scope, self._counting(receive, limit, body), send)
        except ClientDisconnect:
            if not body.cut_short:
                raise
        if body.cut_short:  # FastAPI's routes turn the disconnect into a 400 nobody reads
            _log_cut_short(scope, body.received, declared)

    def _counting(self, receive: Receive, limit: int, body: _BodyProgress) -> Receive:
        async def limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.received += len(message.get("body", b""))
                if body.received > limit:
                    raise BodyTooLargeError(limit)
                body.complete = not message.get("more_body", False)
            elif not body.complete:  # http.disconnect
                body.cut_short = True
            return message

        return limited

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = json_response(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"request body: larger than {limit} bytes",
                    "context": {"max_bytes": limit},
                }
            },
            413,
        )
        await response(scope, receive, send)


class _BodyProgress:
    __slots__ = ("complete", "cut_short", "received")

    def __init__(self) -> None:
        self.received = 0
        self.complete = False
        self.cut_short = False


class BodyTooLargeError(Exception):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"request body larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


def _log_cut_short(scope: Scope, received: int, declared: int | None) -> None:
    client = scope.get("client")
    peer = f"{client[0]}:{client[1]}" if client else "client"
    of = f" of {declared}" if declared is not None else ""
    logger.info(
        "%s: connection closed before the request body was complete: %s %s (%d%s bytes)",
        peer, scope["method"], scope["path"], received, of,
    )  # fmt: skip


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
