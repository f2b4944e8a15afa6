"""OpenTelemetry traces of the API, on when an OTLP endpoint is configured.

`Tracing.from_environment()` is None unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then nothing is installed and no
request pays for tracing. When it is set, voxroute gets a tracer provider of
its own (resource from `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`,
`service.name` `voxroute` by default) that exports through a batch span
processor and the OTLP/HTTP exporter, which reads the other `OTEL_EXPORTER_OTLP_*`
variables (headers, timeout, compression). Then:

- `RequestTracing` makes one SERVER span per request, named `METHOD route`
  (the route template), continuing a W3C `traceparent` sent by the caller;
- `annotate_session` puts the routing context on the span of a session
  creation (session, tenant, region, the chosen provider of each part);
- `flag_hook` (openfeature-hooks-opentelemetry's `TracingHook`) adds one span
  event per flag evaluation. A registered hook makes `RoutingFlagClient` take
  the OpenFeature SDK's path instead of asking its provider directly: with
  tracing on, every evaluation is observable, as intended.

Tests pass `Tracing(exporter)` (an in-memory exporter) to `create_app`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from openfeature.contrib.hook.opentelemetry import TracingHook
from openfeature.hook import Hook
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from experiments.context import RouteContext
from experiments.router import RoutingDecision

from .routes import UNMATCHED, RouteTemplates, method_label

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
DEFAULT_SERVICE_NAME = "voxroute"
SERVER_ERROR = 500


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


class Tracing:
    """voxroute's tracer provider, exporting `exporter`'s way through a batch processor."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.processor = BatchSpanProcessor(exporter)
        self.provider = TracerProvider(resource=_resource())
        self.provider.add_span_processor(self.processor)
        self.tracer: Tracer = self.provider.get_tracer("voxroute")
        self.flag_hook: Hook = TracingHook()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Tracing | None:
        """OTLP/HTTP tracing when an OTLP endpoint is set, else None."""
        return cls(OTLPSpanExporter()) if tracing_requested(environ) else None

    def force_flush(self) -> bool:
        return self.provider.force_flush()

    def shutdown(self) -> None:
        """Export what is pending, then stop the batch processor's thread."""
        self.provider.shutdown()


def _resource() -> Resource:
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


class RequestTracing:
    """One SERVER span per HTTP request (a pure ASGI middleware); outermost, so
    that log lines of every layer below carry its trace and span ids."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self._tracer = tracer
        self._routes = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = method_label(scope["method"])
        with self._tracer.start_as_current_span(
            method,
            context=extract(_headers(scope)),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            status = SERVER_ERROR

            async def send_with_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_with_status)
            finally:
                _finish(span, scope, method, self._routes.of(scope), status)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _finish(span: Span, scope: Scope, method: str, route: str, status: int) -> None:
    if route != UNMATCHED:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    session_id = scope.get("path_params", {}).get("session_id")
    if isinstance(session_id, str):
        span.set_attribute("voxroute.session_id", session_id)
    if status >= SERVER_ERROR:
        span.set_status(StatusCode.ERROR)


def annotate_session(context: RouteContext, decision: RoutingDecision, created: bool) -> None:
    """Put the routing context on the current span; the chosen providers only
    when this call created the session (otherwise the pinned route is the stored one)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, str | int | bool] = {
        "voxroute.session_id": context.session_id,
        "voxroute.tenant_id": context.tenant_id,
        "voxroute.region": context.region,
        "voxroute.session.created": created,
    }
    if created:
        attributes["voxroute.route.mode"] = decision.mode.value
        for part, provider in decision.parts.items():
            if provider is not None:
                attributes[f"voxroute.route.{part}"] = str(provider["id"])
        attributes["voxroute.route.fallbacks"] = len(decision.fallbacks)
    span.set_attributes(attributes)
