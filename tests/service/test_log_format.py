"""The log formats: JSON lines with the routing context and trace ids, the text
lines, the CLI's `--log-format` / VOXROUTE_LOG_FORMAT, uvicorn's loggers in workers."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis_process import free_port

from service.cli import main
from service.main import create_app
from service.observability.log_format import JsonFormatter, TextFormatter
from service.observability.tracing import Tracing
from service.runtime import Runtime
from service.settings import Settings

VOXROUTE = Path(sys.executable).parent / "voxroute"
ROUTE_TO_AP = ["route", "--tenant-id", "acme", "--region", "ap", "--feature", "s2s=true"]


def record(name: str = "voxroute.test", **extra: Any) -> logging.LogRecord:
    made = logging.getLogger(name).makeRecord(
        name, logging.WARNING, __file__, 1, "session %s fell back", ("call-1",), None
    )
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_time_level_logger_message_and_the_extra_fields() -> None:
    line = JsonFormatter().format(record(session_id="call-1", tenant_id="acme", region="eu"))
    body = orjson.loads(line)
    assert body.pop("time").endswith("Z")
    assert body == {
        "level": "WARNING",
        "logger": "voxroute.test",
        "message": "session call-1 fell back",
        "session_id": "call-1",
        "tenant_id": "acme",
        "region": "eu",
    }


def test_a_json_line_carries_the_exception() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        failed = record(exc_info=sys.exc_info())
    assert "ValueError: broken" in orjson.loads(JsonFormatter().format(failed))["exception"]


def test_an_access_line_has_its_request_fields() -> None:
    access = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200), None,
    )  # fmt: skip
    body = orjson.loads(JsonFormatter().format(access))
    assert (body["method"], body["path"], body["status_code"]) == ("GET", "/healthz", 200)


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_a_line_inside_a_span_carries_its_trace_and_span_ids(formatter: logging.Formatter) -> None:
    tracing = Tracing(InMemorySpanExporter())
    with tracing.tracer.start_as_current_span("request") as span:
        line = formatter.format(record())
    tracing.shutdown()
    context = span.get_span_context()
    assert f"{context.trace_id:032x}" in line
    assert f"{context.span_id:016x}" in line


def test_a_text_line_outside_a_span_is_the_classic_line() -> None:
    line = TextFormatter().format(record())
    assert line.endswith(" WARNING voxroute.test: session call-1 fell back")


@pytest.fixture
def router_lines() -> Iterator[io.StringIO]:
    """The JSON lines of the `voxroute.router` logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("voxroute.router")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


@pytest.mark.redis
async def test_a_fallback_line_carries_the_routing_context_and_the_requests_trace(
    settings: Settings, runtime: Runtime, router_lines: io.StringIO
) -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(exporter)
    app = create_app(settings, runtime, tracing=tracing)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://voxroute") as http:
        for i in range(30):  # the s2s split sends some ap sessions to a provider absent there
            body = {"session_id": f"ap-{i}", "tenant_id": "acme", "region": "ap"}
            document = await http.post("/v1/sessions", json={**body, "features": {"s2s": True}})
            if document.json()["fallbacks"]:
                break
    tracing.force_flush()
    spans = {f"{s.context.trace_id:032x}": s for s in exporter.get_finished_spans()}
    tracing.shutdown()
    line = orjson.loads(router_lines.getvalue().splitlines()[0])
    assert line["trace_id"] in spans
    assert {k: line[k] for k in ("tenant_id", "region", "flag_key", "part", "reason")} == {
        "tenant_id": "acme",
        "region": "ap",
        "flag_key": "s2s-provider",
        "part": "s2s",
        "reason": "unavailable_in_region",
    }
    assert (
        line["session_id"] == dict(spans[line["trace_id"]].attributes or {})["voxroute.session_id"]
    )


def route_until_a_fallback(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of `voxroute ... route` for the first session that falls back."""
    for i in range(30):
        assert main([*argv, *ROUTE_TO_AP, "--session-id", f"ap-{i}"]) == 0
        err = capsys.readouterr().err
        if err:
            return err
    raise AssertionError("no session fell back")


def test_the_cli_logs_json_lines_with_log_format_json(capsys: pytest.CaptureFixture[str]) -> None:
    line = orjson.loads(route_until_a_fallback(["--log-format", "json"], capsys).splitlines()[0])
    assert (line["logger"], line["reason"]) == ("voxroute.router", "unavailable_in_region")


def test_voxroute_log_format_sets_the_cli_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXROUTE_LOG_FORMAT", "json")
    assert orjson.loads(route_until_a_fallback([], capsys).splitlines()[0])["region"] == "ap"


def test_text_is_the_default_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert " WARNING voxroute.router: route fallback: " in route_until_a_fallback([], capsys)


def wait_for_line(
    server: subprocess.Popen[bytes], log: Path, needle: str, deadline_s: float, times: int = 1
) -> None:
    deadline = time.monotonic() + deadline_s
    while log.read_text().count(needle) < times:
        if server.poll() is not None:
            raise RuntimeError(f"serve exited with {server.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{needle!r} not logged in {deadline_s}s: {log.read_text()}")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(240)
def test_serve_logs_json_from_every_worker_and_uvicorn(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VOXROUTE_REDIS_URL": redis_url,
        "VOXROUTE_KEY_PREFIX": prefix,
        "VOXROUTE_DATA_DIR": str(tmp_path / "data"),
        "VOXROUTE_LOG_FORMAT": "json",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [VOXROUTE, "serve", "--port", str(port), "--workers", "2"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_line(server, log, "Application startup complete", deadline_s=150, times=2)
        httpx.get(f"http://127.0.0.1:{port}/healthz")
        wait_for_line(server, log, "/healthz", deadline_s=10)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    lines = [orjson.loads(line) for line in log.read_text().splitlines()]
    loggers = {line["logger"] for line in lines}
    assert {"voxroute", "uvicorn.error", "uvicorn.access"} <= loggers
    assert sum("voxroute ready" in line["message"] for line in lines) == 2
    assert not [line for line in lines if "color_message" in line]
