"""An in-memory `SessionLog` and `EventReader`: a FAKE FOR TESTS ONLY.

It keeps everything in dicts of one process, has no TTL, no durability and no
group commit; it exists so that pure-logic tests of other code (the HTTP routes,
the router's callers, the analysis loader) run without Redis. It follows the
semantics of `RedisSessionLog`: idempotent creation by session id, `created`
True on a retry of the same event, stream ids `<ms>-<seq>` increasing.
Set `unavailable = True` to make every call fail as if Redis were away.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..errors import StorageUnavailableError
from ..events import AssignmentEvent
from .protocols import CreateResult, StreamPosition, check_create_args
from .stream_ids import parse_stream_id


class InMemorySessionLog:
    """A fake `SessionLog` (and `EventReader`) kept in memory; for tests only."""

    def __init__(self) -> None:
        self.unavailable = False
        self.closed = False
        self.documents: dict[str, bytes] = {}
        self.stream: list[tuple[str, AssignmentEvent]] = []
        self._recorded: dict[str, tuple[str, str]] = {}  # session -> (event_id, stream_id)
        self._last: tuple[int, int] = (0, 0)

    async def create_session(
        self, session_id: str, document: bytes, event: AssignmentEvent
    ) -> CreateResult:
        check_create_args(session_id, document, event)
        self._check_available()
        stored = self.documents.get(session_id)
        if stored is not None:
            event_id, stream_id = self._recorded[session_id]
            if event_id == event.event_id:
                return CreateResult(stored, created=True, stream_id=stream_id)
            return CreateResult(stored, created=False, stream_id=None)
        stream_id = self._next_id()
        self.documents[session_id] = document
        self._recorded[session_id] = (event.event_id, stream_id)
        self.stream.append((stream_id, event))
        return CreateResult(document, created=True, stream_id=stream_id)

    async def get_session(self, session_id: str) -> bytes | None:
        self._check_available()
        return self.documents.get(session_id)

    async def ping(self) -> bool:
        return not (self.unavailable or self.closed)

    async def aclose(self) -> None:
        self.closed = True

    def read_assignments(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, AssignmentEvent]]]:
        """The recorded events after `since` in batches (one stream: shard 0)."""
        start = parse_stream_id(since if isinstance(since, str) else since.get(0, "0-0"))
        entries = [entry for entry in self.stream if parse_stream_id(entry[0]) > start]
        for first in range(0, len(entries), batch):
            yield entries[first : first + batch]

    def _check_available(self) -> None:
        if self.unavailable or self.closed:
            raise StorageUnavailableError(
                "in-memory session log is unavailable", context={"store": "memory"}
            )

    def _next_id(self) -> str:
        now = time.time_ns() // 1_000_000
        ms, seq = self._last
        self._last = (now, 0) if now > ms else (ms, seq + 1)
        return f"{self._last[0]}-{self._last[1]}"
