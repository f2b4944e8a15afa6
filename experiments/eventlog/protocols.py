"""What the rest of voxroute needs from the session store, the event log and
their readers. Implementations: `RedisSessionLog` and `StreamReader` (Redis),
`InMemorySessionLog` (a fake for tests)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ..context import check_identifier
from ..errors import ErrorCode, ExperimentError
from ..events import AssignmentEvent, OutcomeEvent
from ..performance import fast_init

StreamPosition = str | Mapping[int, str]
"""Where to read from: one stream id for every shard, or a stream id per shard
index (shards missing from the mapping are read from the start)."""


@fast_init
@dataclass(frozen=True, slots=True)
class CreateResult:
    """The outcome of `SessionLog.create_session`.

    `created` is True when the event given is the one recorded with the session:
    on the first write, and also when a retry or replay of that same event
    (same `event_id`) finds its own earlier write. Then `stream_id` is the stream
    id of the event. When another event created the session first, `created` is
    False, `document` is the stored document and `stream_id` is None.
    """

    document: bytes
    created: bool
    stream_id: str | None


@runtime_checkable
class SessionLog(Protocol):
    """The session store and the assignment log, written together atomically.

    Errors: `StorageUnavailableError` when the store cannot be reached or cannot
    take the write (nothing was kept, or it is unknown whether it was; creating
    again with the same event is safe); `ExperimentError` with `INVALID_INPUT`
    when the arguments are inconsistent (checked before any I/O).
    """

    async def create_session(
        self, session_id: str, document: bytes, event: AssignmentEvent
    ) -> CreateResult:
        """Store `document` under `session_id` and append `event`, unless the
        session exists: then return the stored document and write nothing."""
        ...

    async def get_session(self, session_id: str) -> bytes | None:
        """The stored document of a session, or None if there is none."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers now; never raises."""
        ...

    async def aclose(self) -> None:
        """Finish the writes in flight and release the connections."""
        ...


@runtime_checkable
class EventReader(Protocol):
    """Reads the assignment log back, in batches, in stream-id (time) order."""

    def read_assignments(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, AssignmentEvent]]]:
        """Yield lists of at most `batch` `(stream_id, event)` pairs recorded
        after `since` (exclusive), oldest first, until the log is exhausted."""
        ...


class AppendStatus(StrEnum):
    APPENDED = "appended"
    DUPLICATE = "duplicate"
    UNKNOWN_SESSION = "unknown_session"
    SPOOLED = "spooled"


@fast_init
@dataclass(frozen=True, slots=True)
class AppendResult:
    """What happened to one outcome event: appended (with its stream id), a
    duplicate of an event id already recorded for the session (nothing written),
    refused because the session does not exist, or kept in the local spool
    while Redis is away (it will be appended, in order, when Redis is back)."""

    status: AppendStatus
    stream_id: str | None = None


@runtime_checkable
class OutcomeLog(Protocol):
    """The outcome stream: idempotent appends, exactly once per (session, event id)."""

    async def append_outcomes(self, events: Sequence[OutcomeEvent]) -> list[AppendResult]:
        """Append every event (one result per event, same order); concurrent
        callers share round trips (group commit)."""
        ...

    async def session_tenants(self, session_ids: Sequence[str]) -> dict[str, str | None]:
        """The tenant of each session, None for a session that does not exist."""
        ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


def check_create_args(session_id: str, document: bytes, event: AssignmentEvent) -> None:
    """The argument rules of `SessionLog.create_session`, checked before any I/O."""
    check_identifier("session_id", session_id)
    if not isinstance(document, bytes):
        raise ExperimentError(
            f"session {session_id!r}: document must be bytes, got {type(document).__name__}",
            code=ErrorCode.INVALID_INPUT,
            context={"session_id": session_id, "field": "document"},
        )
    if event.session_id != session_id:
        raise ExperimentError(
            f"session {session_id!r}: the assignment event is for session {event.session_id!r}",
            code=ErrorCode.INVALID_INPUT,
            context={"session_id": session_id, "event_session_id": event.session_id},
        )
