"""Session and outcome logs that keep taking writes while Redis is away.

`SpooledSessionLog` and `SpooledOutcomeLog` wrap the Redis logs. A write goes
to Redis; when Redis is unreachable or times out (`StorageUnavailableError`),
it goes to a `DiskSpool` instead and is answered once fsynced there: a session
as created (`created=True`, `stream_id=None`, its document made by this
process), an outcome as `AppendStatus.SPOOLED`. `SpoolReplayer` (`replay`)
re-sends the spool, in order, once Redis answers.

Order: while Redis is believed away (`Spooler.redis_up` is False) every write
goes to the spool; after that, a write for a session that still has records in
the spool goes there too, so that no outcome reaches Redis before its session's
creation or an earlier outcome of that session. Other writes go to Redis at once.

While a session is only in the spool, this process answers for it: a repeated
creation gets the spooled document back (`created=False`, or `created=True` for
the same event), `get_session` returns it and `session_tenants` knows it.
`session_tenants` also remembers the tenants of sessions it has looked up or
created (a bounded LRU) so that outcomes for them are spooled during an outage;
for a session it cannot place while Redis is away it raises
`StorageUnavailableError` (503): nothing is accepted that could not be checked.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import StorageUnavailableError
from ..eventlog.protocols import (
    AppendResult,
    AppendStatus,
    CreateResult,
    OutcomeLog,
    SessionLog,
    check_create_args,
)
from ..events import (
    ASSIGNMENT_FIELDS,
    OUTCOME_FIELDS,
    AssignmentEvent,
    EventDecodeError,
    OutcomeEvent,
)
from ..telemetry import SPOOLED_RECORDS
from .disk_spool import DiskSpool

logger = logging.getLogger("voxroute.spool")

SESSION_RECORD = 1
OUTCOME_RECORD = 2
_SPOOLED_SESSIONS = SPOOLED_RECORDS.labels("session")
_SPOOLED_OUTCOMES = SPOOLED_RECORDS.labels("outcome")
DEFAULT_TENANT_CACHE = 100_000
_ASSIGNMENT_KEYS = tuple(name.encode() for name in ASSIGNMENT_FIELDS)


def encode_session(document: bytes, event: AssignmentEvent) -> bytes:
    """A session record's payload: the document, then the event's stream values."""
    return _pack((document, *event.encode_values()))


def encode_outcome(event: OutcomeEvent) -> bytes:
    return _pack(event.encode_values())


def decode_session(payload: bytes) -> tuple[bytes, AssignmentEvent]:
    """Records spooled before the `context` field existed (its last field) decode too."""
    document, *values = _unpack(payload)
    names = _ASSIGNMENT_KEYS
    if len(values) == len(names) - 1 and names[-1] == b"context":
        names = names[:-1]
    return document, AssignmentEvent.decode(_fields(names, values))


def decode_outcome(payload: bytes) -> OutcomeEvent:
    return OutcomeEvent.decode(_fields(OUTCOME_FIELDS, _unpack(payload)))


@dataclass(slots=True)
class SpoolStats:
    """Counts since start: writes spooled, records replayed into Redis, outcome
    replays Redis already had, records set aside (see `SpoolReplayer`)."""

    spooled_sessions: int = 0
    spooled_outcomes: int = 0
    replayed_sessions: int = 0
    replayed_outcomes: int = 0
    duplicates: int = 0
    rejected: int = 0


@dataclass(slots=True)
class _SpooledSession:
    document: bytes
    event_id: str
    tenant_id: str
    written: asyncio.Future[int] | None = field(default=None, repr=False)


class Spooler:
    """What the spooled logs and the replayer share: the spool, whether Redis
    is believed up, the sessions and per-session record counts in the spool,
    and a bounded cache of known session tenants."""

    def __init__(self, spool: DiskSpool, *, tenant_cache: int = DEFAULT_TENANT_CACHE) -> None:
        self.spool = spool
        self.redis_up = True
        self.stats = SpoolStats()
        self.work = asyncio.Event()  # set while the replayer has something to do
        self._sessions: dict[str, _SpooledSession] = {}
        self._pending: Counter[str] = Counter()
        self._tenants: OrderedDict[str, str] = OrderedDict()
        self._tenant_cache = tenant_cache

    async def recover(self, batch: int = 10_000) -> None:
        """Index the records left in the spool by an earlier run."""
        records = await self.spool.read(batch)
        while records:
            for record in records:
                self._index(record.kind, record.payload)
            records = await self.spool.read(batch, after=records[-1].end)
        if self.spool.depth.records:
            logger.warning("spool %s: %d records to replay", self.spool.directory,
                           self.spool.depth.records)  # fmt: skip
            self.work.set()

    def must_spool(self, session_ids: Iterable[str]) -> bool:
        """Whether a write for these sessions must go to the spool to keep order."""
        return not self.redis_up or any(self._pending.get(sid) for sid in session_ids)

    def mark_down(self, exc: BaseException) -> None:
        if self.redis_up:
            logger.warning("Redis unavailable, spooling to %s: %s", self.spool.directory, exc)
        self.redis_up = False
        self.work.set()

    def spooled_document(self, session_id: str) -> bytes | None:
        entry = self._sessions.get(session_id)
        return None if entry is None else entry.document

    def tenant_of(self, session_id: str, *, cached: bool) -> str | None:
        """The tenant of a session in the spool, else (with `cached`) a remembered one."""
        entry = self._sessions.get(session_id)
        if entry is not None:
            return entry.tenant_id
        return self._tenants.get(session_id) if cached else None

    def remember_tenant(self, session_id: str, tenant_id: str) -> None:
        self._tenants[session_id] = tenant_id
        self._tenants.move_to_end(session_id)
        if len(self._tenants) > self._tenant_cache:
            self._tenants.popitem(last=False)

    async def spool_session(
        self, session_id: str, document: bytes, event: AssignmentEvent
    ) -> CreateResult:
        """Keep a session creation in the spool (once per session id)."""
        entry = self._sessions.get(session_id)
        if entry is None:
            written = self.spool.submit([(SESSION_RECORD, encode_session(document, event))])
            entry = _SpooledSession(document, event.event_id, event.tenant_id, written)
            self._sessions[session_id] = entry
            self._hold([session_id], written, entry)
            self.stats.spooled_sessions += 1
            _SPOOLED_SESSIONS.inc()
        if entry.written is not None:
            await asyncio.shield(entry.written)
        return CreateResult(entry.document, entry.event_id == event.event_id, None)

    async def spool_outcomes(self, events: Sequence[OutcomeEvent]) -> list[AppendResult]:
        """Keep outcome events in the spool, all or none."""
        written = self.spool.submit([(OUTCOME_RECORD, encode_outcome(e)) for e in events])
        self._hold([event.session_id for event in events], written, None)
        self.stats.spooled_outcomes += len(events)
        _SPOOLED_OUTCOMES.inc(len(events))
        await asyncio.shield(written)
        return [AppendResult(AppendStatus.SPOOLED) for _ in events]

    def release(self, session_id: str) -> None:
        """A record of `session_id` left the spool (replayed or set aside)."""
        count = self._pending.get(session_id, 0) - 1
        if count > 0:
            self._pending[session_id] = count
            return
        self._pending.pop(session_id, None)
        entry = self._sessions.pop(session_id, None)
        if entry is not None:
            self.remember_tenant(session_id, entry.tenant_id)

    def _hold(
        self, session_ids: list[str], written: asyncio.Future[int], entry: _SpooledSession | None
    ) -> None:
        """Count the records of `session_ids` as in the spool; uncount them if the write fails."""
        self._pending.update(session_ids)
        self.work.set()

        def undo(future: asyncio.Future[int]) -> None:
            if not future.cancelled() and future.exception() is None:
                return
            if entry is not None and self._sessions.get(session_ids[0]) is entry:
                del self._sessions[session_ids[0]]
            for session_id in session_ids:
                self.release(session_id)

        written.add_done_callback(undo)

    def _index(self, kind: int, payload: bytes) -> None:
        try:
            if kind == SESSION_RECORD:
                document, event = decode_session(payload)
                session_id = event.session_id
                entry = _SpooledSession(document, event.event_id, event.tenant_id)
                self._sessions.setdefault(session_id, entry)
            elif kind == OUTCOME_RECORD:
                session_id = decode_outcome(payload).session_id
            else:
                return
        except EventDecodeError:
            return  # the replayer sets it aside
        self._pending[session_id] += 1


class SpooledSessionLog:
    """A `SessionLog` that spools creations while `inner` (Redis) is away."""

    def __init__(self, inner: SessionLog, spooler: Spooler) -> None:
        self.inner = inner
        self.spooler = spooler

    async def create_session(
        self, session_id: str, document: bytes, event: AssignmentEvent
    ) -> CreateResult:
        """See `SessionLog.create_session`; spooled, `stream_id` is None."""
        check_create_args(session_id, document, event)
        spooler = self.spooler
        if not spooler.redis_up or spooler.spooled_document(session_id) is not None:
            return await spooler.spool_session(session_id, document, event)
        try:
            result = await self.inner.create_session(session_id, document, event)
        except StorageUnavailableError as exc:
            spooler.mark_down(exc)
            return await spooler.spool_session(session_id, document, event)
        if result.created:
            spooler.remember_tenant(session_id, event.tenant_id)
        return result

    async def get_session(self, session_id: str) -> bytes | None:
        """The spooled document, else Redis's; `StorageUnavailableError` at once
        while Redis is believed away."""
        document = self.spooler.spooled_document(session_id)
        if document is not None:
            return document
        if not self.spooler.redis_up:
            raise _away(session_id, "get_session")
        try:
            return await self.inner.get_session(session_id)
        except StorageUnavailableError as exc:
            self.spooler.mark_down(exc)
            raise

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


class SpooledOutcomeLog:
    """An `OutcomeLog` that spools appends while `inner` (Redis) is away."""

    def __init__(self, inner: OutcomeLog, spooler: Spooler) -> None:
        self.inner = inner
        self.spooler = spooler

    async def append_outcomes(self, events: Sequence[OutcomeEvent]) -> list[AppendResult]:
        """See `OutcomeLog.append_outcomes`; spooled events are `SPOOLED`."""
        if not events:
            return []
        spooler = self.spooler
        if spooler.must_spool(event.session_id for event in events):
            return await spooler.spool_outcomes(events)
        try:
            return await self.inner.append_outcomes(events)
        except StorageUnavailableError as exc:
            spooler.mark_down(exc)
            return await spooler.spool_outcomes(events)

    async def session_tenants(self, session_ids: Sequence[str]) -> dict[str, str | None]:
        """Spooled sessions first, then Redis; while Redis is away, the
        remembered tenants, and `StorageUnavailableError` for any other session."""
        spooler = self.spooler
        found: dict[str, str | None] = {}
        for session_id in session_ids:
            if (tenant := spooler.tenant_of(session_id, cached=False)) is not None:
                found[session_id] = tenant
        rest = [session_id for session_id in dict.fromkeys(session_ids) if session_id not in found]
        if rest and spooler.redis_up:
            try:
                looked_up = await self.inner.session_tenants(rest)
            except StorageUnavailableError as exc:
                spooler.mark_down(exc)
            else:
                for session_id, tenant in looked_up.items():
                    if tenant is not None:
                        spooler.remember_tenant(session_id, tenant)
                return {**found, **looked_up}
        for session_id in rest:
            if (tenant := spooler.tenant_of(session_id, cached=True)) is None:
                raise _away(session_id, "session_tenants")
            found[session_id] = tenant
        return found

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _away(session_id: str, operation: str) -> StorageUnavailableError:
    return StorageUnavailableError(
        f"session {session_id!r}: {operation} needs Redis, which is unavailable; the "
        "writes are spooled meanwhile, retry after Retry-After",
        context={"session_id": session_id, "operation": operation},
    )


def _pack(parts: Iterable[bytes]) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _unpack(payload: bytes) -> list[bytes]:
    parts: list[bytes] = []
    offset = 0
    while offset < len(payload):
        end = offset + 4 + int.from_bytes(payload[offset : offset + 4], "big")
        if end > len(payload):
            raise EventDecodeError(f"spool record payload torn at byte {offset}")
        parts.append(payload[offset + 4 : end])
        offset = end
    return parts


def _fields(names: Sequence[bytes], values: Sequence[bytes]) -> dict[bytes, bytes]:
    if len(names) != len(values):
        raise EventDecodeError(f"spool record has {len(values)} fields, expected {len(names)}")
    return dict(zip(names, values, strict=True))
