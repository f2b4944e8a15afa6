"""uvicorn's HTTP/1.1 protocol (httptools) with the limits a public edge needs.

With httptools, uvicorn bounds none of these (h11's 16 KiB incomplete-event limit
is h11's own, and answers 400): a client that sends a header line every few
seconds holds its connection for ever, a header block may be megabytes, and every
connection the kernel hands over is served. `LimitedHttpProtocol` adds, per
process (`voxroute serve` runs uvicorn with it; settings in `service.settings`):

- A read deadline, `request_read_timeout_s`: from the connection (or from the first
  byte of the next request on a kept-alive one) until the request's headers and
  body are in. Headers late: `408` and the connection is closed. Body late: the
  connection is closed (the application is already running; it sees a disconnect).
  When the server, not the client, is the one waiting (it stopped reading until
  the application takes the body read so far, or a pipelined request waits for
  the response before it), the deadline starts again.
- Header bytes, `max_header_bytes`: the request target and header fields of one
  request; over it, `431` and the connection is closed, before the application runs.
  The parsed headers are measured only when the reads that carried them could hold
  more than the bound (a request's headers usually come in one read, of a few
  hundred bytes), so the common case costs one comparison. httptools keeps an
  unfinished header line in memory, so a header block that does not end is cut
  once the reads after the one it began in pass the bound: memory stays within
  the bound plus one read (256 KB at most).
- Open connections, `max_connections`: one more is answered `503` with
  `Retry-After` and closed at once (a warning when this starts, not per connection).

Errors are the API's JSON error bodies, with `Connection: close`. After a 408 or
431 the server sends its FIN and reads (and drops) what the client still sends
for up to a second before it closes: closing a socket with unread bytes sends a
reset, and the client would lose the answer (a "lingering close", as nginx's).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from .settings import Settings, get_settings

logger = logging.getLogger("voxroute.http")

UVICORN_HTTP = "service.http_protocol:LimitedHttpProtocol"  # uvicorn's `http` option
RETRY_AFTER_S = b"1"
LINGER_S = 1.0


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    read_timeout_s: float
    max_header_bytes: int
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            settings.request_read_timeout_s,
            settings.max_header_bytes,
            settings.max_connections,
        )


@functools.cache
def process_limits() -> EdgeLimits:
    return EdgeLimits.from_settings(get_settings())


_overloaded = False  # refusing connections since the last one admitted (one warning each time)


class LimitedHttpProtocol(HttpToolsProtocol):
    """See the module docstring; one instance per connection, as uvicorn's."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = process_limits()
        # The read deadline: one timer per connection, re-armed when it fires early,
        # so that a request costs a clock read instead of a timer set and cancelled.
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_since: float | None = None  # None: no request being read
        self._finished = False  # answered 503, 408 or 431: the rest of the input is dropped
        self._in_headers = False  # a request began and its headers are not all in
        self._began = 0  # requests begun on this connection
        self._read = 0  # bytes of the read being parsed
        self._first_read = 0  # bytes of the read in which the current request began
        self._more_reads = 0  # bytes of the later reads while its headers were not all in

    # -- connections ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        global _overloaded  # noqa: PLW0603 - one process-wide episode flag
        if len(self.connections) >= self.limits.max_connections:
            if not _overloaded:
                logger.warning(
                    "%d connections open (VOXROUTE_MAX_CONNECTIONS): answering 503 to new "
                    "ones until one closes",
                    len(self.connections),
                )
            _overloaded = True
            self._finished = True
            self.transport = transport
            message = f"too many connections: this process serves {self.limits.max_connections}"
            context = {"max_connections": self.limits.max_connections}
            retry = [(b"retry-after", RETRY_AFTER_S)]
            self._answer(503, "too_many_connections", message, context, retry)
            self.transport.close()
            return
        _overloaded = False
        super().connection_made(transport)
        self._reading_since = self.loop.time()  # waiting for the first request counts
        self._arm(self.limits.read_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()  # the read deadline, or the lingering close
        if self._finished and self.flow is None:  # refused in connection_made: nothing started
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._finished:
            return
        self._read = len(data)
        in_headers, began = self._in_headers, self._began
        super().data_received(data)
        if self._in_headers and in_headers and began == self._began:  # all of it headers
            self._more_reads += len(data)
            if self._more_reads > self.limits.max_header_bytes:
                self._headers_too_large()

    # -- parser callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began += 1
        self._in_headers = True
        self._first_read, self._more_reads = self._read, 0
        if self._reading_since is None:
            self._reading_since = self.loop.time()
        if self._deadline is None:
            self._arm(self.limits.read_timeout_s)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        limit = self.limits.max_header_bytes
        if self._first_read + self._more_reads > limit and self._header_bytes() > limit:
            self._headers_too_large()
        if not self._finished:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._finished:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._finished:
            super().on_message_complete()
            self._reading_since = None

    # -- limits ---------------------------------------------------------------------

    def _header_bytes(self) -> int:
        """The request target and the header fields as parsed, with ": " and CRLF."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _headers_too_large(self) -> None:
        if self._finished:  # a pipelined request after the refused one, in the same read
            return
        limit = self.limits.max_header_bytes
        self._finished = True
        logger.info("%s: request headers over %d bytes; answered 431", self._peer(), limit)
        message = f"request headers: larger than {limit} bytes (VOXROUTE_MAX_HEADER_BYTES)"
        self._answer(431, "header_fields_too_large", message, {"max_bytes": limit})
        self._linger()

    def _arm(self, delay: float) -> None:
        self._deadline = self.loop.call_later(delay, self._read_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._finished or self._reading_since is None:
            return  # no request being read: uvicorn's keep-alive timeout holds
        timeout = self.limits.read_timeout_s
        left = self._reading_since + timeout - self.loop.time()
        if left > 0:  # another request began since the timer was set
            self._arm(left)
            return
        server_busy = self.flow.read_paused or (  # the server, not the client, is late:
            self._in_headers and self.cycle is not None and not self.cycle.response_complete
        )  # it stopped reading, or the response before this pipelined request is not out
        if server_busy:
            self._reading_since = self.loop.time()
            self._arm(timeout)
            return
        if self._in_headers:
            logger.info("%s: request headers not in after %gs; answered 408", self._peer(), timeout)
            message = f"request headers not received within {timeout:g}s"
            self._answer(408, "request_timeout", message, {"timeout_s": timeout})
            self._finished = True
            self._linger()
        elif self._began:
            logger.info("%s: request body not in after %gs; closed", self._peer(), timeout)
            self.transport.close()
        else:  # connected and sent nothing
            self.transport.close()

    def _linger(self) -> None:
        """Half-close after the answer; close for good when the client does or later."""
        self._disarm()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._deadline = self.loop.call_later(LINGER_S, self.transport.close)

    def _answer(
        self,
        status: int,
        code: str,
        message: str,
        context: dict[str, Any],
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = orjson.dumps({"error": {"code": code, "message": message, "context": context}})
        fields = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *(headers or []),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
        self.transport.write(STATUS_LINE[status] + head + b"\r\n" + body)

    def _peer(self) -> str:
        return "%s:%d" % self.client if self.client else "client"  # noqa: UP031 - uvicorn's form
