"""`RequestMetrics`: the latency of every HTTP request, by method, route template and status.

A pure ASGI middleware (no per-request objects beyond one closure): the route
template comes from the scope once the router has matched (`RouteTemplates`),
so `/v1/sessions/{session_id}` is one label value whatever the session, and the
plain hot-path routes are labelled like the others. The histogram child of
each (method, route, status) is looked up once and kept.
"""

from __future__ import annotations

from time import perf_counter

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from experiments.telemetry import HTTP_REQUEST_SECONDS

from .routes import RouteTemplates, method_label

SERVER_ERROR = 500
"""The status of a request whose handler raised before answering (Starlette answers 500)."""


class RequestMetrics:
    def __init__(self, app: ASGIApp, histogram: Histogram = HTTP_REQUEST_SECONDS) -> None:
        self.app = app
        self._histogram = histogram
        self._children: dict[tuple[str, str, int], Histogram] = {}
        self._routes = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = SERVER_ERROR

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = perf_counter()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._child(scope, status).observe(perf_counter() - start)

    def _child(self, scope: Scope, status: int) -> Histogram:
        key = (method_label(scope["method"]), self._routes.of(scope), status)
        child = self._children.get(key)
        if child is None:
            child = self._histogram.labels(key[0], key[1], str(status))
            self._children[key] = child
        return child
