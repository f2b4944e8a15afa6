"""The HTTP edge of a real `voxroute serve` (uvicorn with voxroute's protocol) on the
real Redis, driven with raw sockets: slow clients are cut at the read deadline,
header blocks are bounded, open connections are bounded, and a body cut short is
one log line, not a traceback."""

from __future__ import annotations

import http.client
import logging
import select
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from faults import VoxrouteServe
from redis_process import wait_for

from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
READ_TIMEOUT_S = 0.5
DEADLINE_S = 10.0  # how long a test waits for what the server must do well before
MAX_CONNECTIONS = 3
CUT_SHORT = "connection closed before the request body was complete"


def _serve(redis_url: str, folder: Path, **settings: str) -> Iterator[VoxrouteServe]:
    prefix = f"vrtest:{uuid.uuid4().hex}"
    env = {
        "VOXROUTE_REDIS_URL": redis_url,
        "VOXROUTE_KEY_PREFIX": prefix,
        "VOXROUTE_DATA_DIR": str(folder / "voxroute"),
        **{f"VOXROUTE_{name.upper()}": value for name, value in settings.items()},
    }
    server = VoxrouteServe(env).start(folder / "voxroute.log")
    try:
        yield server
    finally:
        server.stop()
        with redis.Redis.from_url(redis_url) as conn:
            keys = list(conn.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                conn.delete(*keys)


@pytest.fixture(scope="module")
def edge(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoxrouteServe]:
    """A server with a short read deadline and the default bounds."""
    yield from _serve(
        redis_url, tmp_path_factory.mktemp("edge"), request_read_timeout_s=str(READ_TIMEOUT_S)
    )


@pytest.fixture(scope="module")
def bounded(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoxrouteServe]:
    """A server that serves at most MAX_CONNECTIONS connections."""
    yield from _serve(
        redis_url, tmp_path_factory.mktemp("bounded"), max_connections=str(MAX_CONNECTIONS)
    )


def _connect(server: VoxrouteServe) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; fails if it keeps the connection open."""
    chunks = []
    deadline = time.monotonic() + DEADLINE_S
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {DEADLINE_S}s")
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _status_and_error(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    error: dict[str, Any] = orjson.loads(body)["error"]
    return status, error


def _log(server: VoxrouteServe) -> str:
    assert server.log is not None
    return server.log.read_text()


def test_a_connection_that_sends_nothing_is_closed(edge: VoxrouteServe) -> None:
    with _connect(edge) as sock:
        assert _read_until_closed(sock) == b""


def test_a_client_that_stops_in_the_headers_gets_408_and_is_closed(edge: VoxrouteServe) -> None:
    with _connect(edge) as sock:
        sock.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: voxroute\r\nContent-Ty")
        status, error = _status_and_error(_read_until_closed(sock))
    assert (status, error["code"]) == (408, "request_timeout")


def test_header_lines_sent_one_by_one_do_not_extend_the_deadline(edge: VoxrouteServe) -> None:
    with _connect(edge) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: voxroute\r\n")
        deadline = time.monotonic() + DEADLINE_S
        answered = False
        while not answered and time.monotonic() < deadline:  # a line every 50 ms, for ever
            answered = bool(select.select([sock], [], [], 0.05)[0])
            if not answered:
                sock.sendall(b"X-Slow: 1\r\n")
        assert answered, f"the server waited {DEADLINE_S}s for the headers"
        status, error = _status_and_error(_read_until_closed(sock))
    assert (status, error["code"]) == (408, "request_timeout")


def test_a_client_that_stops_in_the_body_is_closed_and_nothing_is_written(
    edge: VoxrouteServe,
) -> None:
    with _connect(edge) as sock:
        sock.sendall(
            b"POST /v1/sessions HTTP/1.1\r\nHost: voxroute\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
            b'{"session_id": "slow-body", '
        )
        assert _read_until_closed(sock) == b""  # the application was reading: no answer
    wait_for(lambda: "request body not in after 0.5s" in _log(edge), "the timeout's log line")
    assert httpx.get(f"{edge.url}/v1/sessions/slow-body").status_code == 404


def test_a_client_gone_mid_body_is_one_log_line_and_no_traceback(edge: VoxrouteServe) -> None:
    mark = len(_log(edge))
    with _connect(edge) as sock:
        sock.sendall(
            b"POST /v1/sessions HTTP/1.1\r\nHost: voxroute\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"session_'
        )
    wait_for(lambda: CUT_SHORT in _log(edge)[mark:], "the log line of the cut body")
    assert httpx.get(f"{edge.url}/healthz").status_code == 200  # the server is still well
    written = _log(edge)[mark:]
    lines = [line for line in written.splitlines() if CUT_SHORT in line]
    assert len(lines) == 1
    assert "POST /v1/sessions (" in lines[0]
    assert lines[0].endswith(" of 100 bytes)")
    assert "Traceback" not in written
    assert "Exception in ASGI application" not in written


def _get_healthz(server: VoxrouteServe, header: bytes) -> bytes:
    with _connect(server) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: voxroute\r\nConnection: close\r\n" + header + b"\r\n"
        )
        return _read_until_closed(sock)


def test_headers_over_16_kib_are_431(edge: VoxrouteServe) -> None:
    response = _get_healthz(edge, b"X-Big: " + b"a" * (17 * 1024) + b"\r\n")
    status, error = _status_and_error(response)
    assert (status, error["code"]) == (431, "header_fields_too_large")
    assert error["message"] == (
        "request headers: larger than 16384 bytes (VOXROUTE_MAX_HEADER_BYTES)"
    )


def test_headers_under_16_kib_are_served(edge: VoxrouteServe) -> None:
    response = _get_healthz(edge, b"X-Big: " + b"a" * (15 * 1024) + b"\r\n")
    assert response.startswith(b"HTTP/1.1 200 ")


def test_a_header_line_that_never_ends_is_cut(edge: VoxrouteServe) -> None:
    mark = len(_log(edge))
    with _connect(edge) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: voxroute\r\nX-Big: " + b"a" * 1024**2)
        status, error = _status_and_error(_read_until_closed(sock))
    assert (status, error["code"]) == (431, "header_fields_too_large")
    assert "request headers over 16384 bytes" in _log(edge)[mark:]


def _admitted(server: VoxrouteServe) -> http.client.HTTPConnection:
    """A kept-alive connection that the server serves (retried while it answers 503)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE_S)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return conn
        except (ConnectionError, http.client.HTTPException):
            pass  # refused at once: the 503 and the close may beat the request
        conn.close()
        assert time.monotonic() < deadline, "no connection admitted"


def test_connections_over_the_bound_are_503_until_one_closes(bounded: VoxrouteServe) -> None:
    open_ones = [_admitted(bounded) for _ in range(MAX_CONNECTIONS)]
    try:
        with _connect(bounded) as sock:
            status, error = _status_and_error(_read_until_closed(sock))
        assert (status, error["code"]) == (503, "too_many_connections")
        assert error["context"] == {"max_connections": MAX_CONNECTIONS}
        open_ones.pop().close()
        open_ones.append(_admitted(bounded))
    finally:
        for conn in open_ones:
            conn.close()
    assert "connections open (VOXROUTE_MAX_CONNECTIONS)" in _log(bounded)


def test_the_503_over_the_bound_says_when_to_retry(bounded: VoxrouteServe) -> None:
    open_ones = [_admitted(bounded) for _ in range(MAX_CONNECTIONS)]
    try:
        with _connect(bounded) as sock:
            response = _read_until_closed(sock)
    finally:
        for conn in open_ones:
            conn.close()
    head = response.partition(b"\r\n\r\n")[0].lower()
    assert b"\r\nretry-after: 1" in head
    assert b"\r\nconnection: close" in head


@pytest.mark.parametrize(
    ("path", "declared"), [("/v1/sessions", 100), ("/v1/sessions/call-1/outcomes", None)]
)
async def test_a_body_cut_short_is_logged_once_by_the_app(
    settings: Settings,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    path: str,
    declared: int | None,
) -> None:
    """Without a server: the hot path (a plain route) and a FastAPI route alike."""
    caplog.set_level(logging.INFO, logger="voxroute.http")
    messages = [{"type": "http.request", "body": b'{"session_id": ', "more_body": True}]
    headers = [(b"content-type", b"application/json")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    await create_app(settings, runtime)(scope, receive, send)
    of = f" of {declared}" if declared is not None else ""
    assert [r.getMessage() for r in caplog.records if r.name == "voxroute.http"] == [
        f"127.0.0.1:5555: {CUT_SHORT}: POST {path} (15{of} bytes)"
    ]
