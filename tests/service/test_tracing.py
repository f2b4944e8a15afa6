"""OpenTelemetry tracing: spans kept by an in-memory exporter passed to `create_app`
(a real app on a real Redis), the OTLP/HTTP export configured from the
environment, and nothing installed when no endpoint is set."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.main import create_app
from service.observability.tracing import RequestTracing, Tracing, tracing_requested
from service.runtime import Runtime
from service.settings import Settings

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
SESSION = {"session_id": "call-1", "tenant_id": "acme", "region": "eu"}
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(
    settings: Settings, runtime: Runtime, exporter: InMemorySpanExporter
) -> AsyncIterator[tuple[httpx.AsyncClient, Tracing]]:
    tracing = Tracing(exporter)
    app = create_app(settings, runtime, tracing=tracing)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://voxroute"
    ) as http:
        yield http, tracing
    tracing.shutdown()


def finished(tracing: Tracing, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    tracing.force_flush()
    return list(exporter.get_finished_spans())


async def test_a_session_creation_is_one_server_span_with_its_routing_context(
    traced: tuple[httpx.AsyncClient, Tracing], exporter: InMemorySpanExporter
) -> None:
    http, tracing = traced
    route = (await http.post("/v1/sessions", json=SESSION)).json()["route"]
    [span] = finished(tracing, exporter)
    assert (span.name, span.kind) == ("POST /v1/sessions", SpanKind.SERVER)
    attributes: dict[str, Any] = dict(span.attributes or {})
    assert attributes["http.route"] == "/v1/sessions"
    assert attributes["http.response.status_code"] == 201
    assert attributes["voxroute.session_id"] == "call-1"
    assert attributes["voxroute.tenant_id"] == "acme"
    assert attributes["voxroute.region"] == "eu"
    assert attributes["voxroute.route.mode"] == "pipeline"
    for part in ("stt", "tts", "vad", "turn_detection"):
        assert attributes[f"voxroute.route.{part}"] == route[part]["id"]


async def test_every_flag_evaluation_is_an_event_of_the_request_span(
    traced: tuple[httpx.AsyncClient, Tracing], exporter: InMemorySpanExporter
) -> None:
    http, tracing = traced
    document = (await http.post("/v1/sessions", json=SESSION)).json()
    [span] = finished(tracing, exporter)
    evaluated = [
        (event.attributes or {})["feature_flag.key"]
        for event in span.events
        if event.name == "feature_flag.evaluation"
    ]
    assert evaluated == [a["flag_key"] for a in document["assignments"]]


async def test_a_repeated_session_carries_no_providers(
    traced: tuple[httpx.AsyncClient, Tracing], exporter: InMemorySpanExporter
) -> None:
    http, tracing = traced
    await http.post("/v1/sessions", json=SESSION)
    await http.post("/v1/sessions", json=SESSION)
    attributes = dict(finished(tracing, exporter)[-1].attributes or {})
    assert attributes["voxroute.session.created"] is False
    assert "voxroute.route.stt" not in attributes


async def test_a_callers_traceparent_is_continued(
    traced: tuple[httpx.AsyncClient, Tracing], exporter: InMemorySpanExporter
) -> None:
    http, tracing = traced
    parent = f"00-{TRACE_ID}-b7ad6b7169203331-01"
    await http.get("/v1/sessions/call-404", headers={"traceparent": parent})
    [span] = finished(tracing, exporter)
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.name == "GET /v1/sessions/{session_id}"
    assert dict(span.attributes or {})["voxroute.session_id"] == "call-404"


async def test_a_client_error_is_no_span_error(
    traced: tuple[httpx.AsyncClient, Tracing], exporter: InMemorySpanExporter
) -> None:
    http, tracing = traced
    await http.get("/nowhere")
    [span] = finished(tracing, exporter)
    assert span.name == "GET"  # no route: no template in the name
    assert span.status.status_code is StatusCode.UNSET


async def answer_503(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 503, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def fail(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a bug")


@pytest.mark.parametrize("app", [answer_503, fail])
async def test_a_server_error_is_a_span_error(exporter: InMemorySpanExporter, app: ASGIApp) -> None:
    tracing = Tracing(exporter)
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    with contextlib.suppress(RuntimeError):
        await RequestTracing(app, tracing.tracer)(scope, receive_nothing, discard)
    [span] = finished(tracing, exporter)
    tracing.shutdown()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["http.response.status_code"] in {500, 503}


async def receive_nothing() -> Message:
    return {"type": "http.disconnect"}


async def discard(message: Message) -> None:
    pass


def test_without_an_otlp_endpoint_nothing_is_installed(
    settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENDPOINT, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    app = create_app(settings, runtime)
    assert app.state.tracing is None
    assert RequestTracing not in [m.cls for m in app.user_middleware]
    assert runtime.flag_client is not None
    assert runtime.flag_client.client.hooks == []
    assert runtime.sessions.on_routed is None


@pytest.mark.parametrize(
    ("environ", "requested"),
    [
        ({}, False),
        ({ENDPOINT: ""}, False),
        ({ENDPOINT: "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ],
)
def test_tracing_is_requested_by_an_otlp_endpoint(environ: dict[str, str], requested: bool) -> None:
    assert tracing_requested(environ) is requested


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that keeps the span names it is sent."""

    received: list[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.received.extend(span.name for span in scope_spans.spans)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    handler = type("Handler", (Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


async def test_the_endpoint_variable_exports_batches_over_otlp_http(
    settings: Settings,
    runtime: Runtime,
    collector: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = collector
    monkeypatch.setenv(ENDPOINT, url)
    app = create_app(settings, runtime)
    tracing: Tracing = app.state.tracing
    assert isinstance(tracing.exporter, OTLPSpanExporter)
    assert isinstance(tracing.processor, BatchSpanProcessor)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://voxroute"
    ) as http:
        await http.post("/v1/sessions", json=SESSION)
    tracing.shutdown()  # exports what is pending
    assert received == ["POST /v1/sessions"]
