"""`RedisOutcomeLog`: the outcome stream on Redis, exactly once per (session, event id).

Each event is one server-side script (`APPEND_OUTCOME_SCRIPT`) that, atomically:

1. refuses the event when the session's hash does not exist (`unknown_session`);
2. adds the event id to the session's dedupe set (`<p>:{s<n>}:seen:<session>`);
   when it was there already, the event is a `duplicate` and nothing is written;
3. otherwise appends the event to the outcome stream shard (`<p>:{s<n>}:outcomes`),
   trimmed by an approximate MAXLEN and/or MINID when configured, and returns
   its stream id (`appended`).

The dedupe set expires with the session (it takes the session hash's remaining
TTL when it is created), and all three keys share the session's hash tag, so the
script runs unchanged on a Redis Cluster. Concurrent callers share pipelines
(`group_commit.GroupCommit`). Retrying or replaying an event (same session, same
event id) is therefore always safe: clients deliver at least once, the log keeps
each event once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from redis.exceptions import ResponseError

from ..context import check_identifier
from ..errors import StorageUnavailableError
from ..events import OUTCOME_FIELDS, OutcomeEvent
from .group_commit import (
    DEFAULT_MAX_BATCH,
    UNAVAILABLE,
    AsyncRedis,
    GroupCommit,
    LuaScript,
    bounded_client,
    check_positive,
    minid_now,
    ping,
)
from .keys import KeyLayout
from .protocols import AppendResult, AppendStatus

logger = logging.getLogger("voxroute.eventlog")

_XADD_FIELDS = ", ".join(
    f"'{name.decode()}', ARGV[{4 + i}]" for i, name in enumerate(OUTCOME_FIELDS)
)

# KEYS[1] session hash, KEYS[2] dedupe set, KEYS[3] outcome stream shard.
# ARGV[1] event id, ARGV[2] approximate MAXLEN (0: none), ARGV[3] approximate
# MINID (0: none), ARGV[4..] the event's values (OUTCOME_FIELDS).
# Returns {1, stream id} appended, {0} duplicate, {2} unknown session.
APPEND_OUTCOME_SCRIPT = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {{2}} end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return {{0}} end
if redis.call('SCARD', KEYS[2]) == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
local id
if ARGV[2] == '0' then
  id = redis.call('XADD', KEYS[3], '*', {_XADD_FIELDS})
else
  id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', {_XADD_FIELDS})
end
if ARGV[3] ~= '0' then redis.call('XTRIM', KEYS[3], 'MINID', '~', ARGV[3]) end
return {{1, id}}
"""
_SCRIPT = LuaScript(APPEND_OUTCOME_SCRIPT)
APPEND_OUTCOME_SHA = _SCRIPT.sha
_DUPLICATE = AppendResult(AppendStatus.DUPLICATE)
_UNKNOWN = AppendResult(AppendStatus.UNKNOWN_SESSION)


class RedisOutcomeLog:
    """An `OutcomeLog` on Redis (`redis.asyncio.Redis` or `RedisCluster`, bytes replies).

    `stream_maxlen` caps each outcome stream shard approximately (None: never),
    `stream_minid_age_s` drops entries older than that many seconds
    approximately (None: never). `client` is closed by `aclose` only when the
    log made it (`from_url`). Errors: `StorageUnavailableError` when Redis is
    away, times out or refuses a write (appending the same events again is
    safe); `ExperimentError` (`INVALID_INPUT`) for bad ids, before any I/O.
    """

    def __init__(
        self,
        client: AsyncRedis,
        keys: KeyLayout | None = None,
        *,
        stream_maxlen: int | None = None,
        stream_minid_age_s: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        ping_timeout_s: float = 1.0,
        owns_client: bool = False,
    ) -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisOutcomeLog needs a client with decode_responses=False")
        check_positive("stream_maxlen", stream_maxlen)
        check_positive("stream_minid_age_s", stream_minid_age_s)
        self.keys = keys or KeyLayout()
        self._client = client
        self._owns_client = owns_client
        self._maxlen = str(stream_maxlen or 0)
        self._minid_age_ms = (stream_minid_age_s or 0) * 1000
        self._ping_timeout_s = ping_timeout_s
        self._commit = GroupCommit(client, _SCRIPT, max_batch=max_batch, what="outcomes")

    @property
    def flushes(self) -> int:
        return self._commit.flushes

    @property
    def flushed(self) -> int:
        return self._commit.flushed

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        keys: KeyLayout | None = None,
        stream_maxlen: int | None = None,
        stream_minid_age_s: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        socket_timeout_s: float = 2.0,
        connect_timeout_s: float = 1.0,
    ) -> RedisOutcomeLog:
        """A log with its own client for `url`, with bounded timeouts (see
        `RedisSessionLog.from_url`)."""
        return cls(
            bounded_client(url, socket_timeout_s, connect_timeout_s),
            keys=keys,
            stream_maxlen=stream_maxlen,
            stream_minid_age_s=stream_minid_age_s,
            max_batch=max_batch,
            owns_client=True,
        )

    async def append_outcomes(self, events: Sequence[OutcomeEvent]) -> list[AppendResult]:
        """Append each event once per (session, event id); one result per event,
        in order. All calls join the next group commit; when any of them fails
        the whole call raises `StorageUnavailableError` (some events may have
        been appended: appending them all again is safe)."""
        for event in events:
            check_identifier("session_id", event.session_id)
            check_identifier("event_id", event.event_id)
        if self._commit.closed:
            raise StorageUnavailableError("the outcome log is closed", context=_context(events))
        minid = minid_now(self._minid_age_ms) if self._minid_age_ms else "0"
        futures = [self._commit.submit(*self._call(event, minid)) for event in events]
        replies = await asyncio.gather(*futures, return_exceptions=True)
        return [_result(event, reply) for event, reply in zip(events, replies, strict=True)]

    async def session_tenants(self, session_ids: Sequence[str]) -> dict[str, str | None]:
        """The tenant of each session (None: no such session), in one pipelined
        round trip; sessions stored without a `tenant` field (before it existed)
        cost a second one that reads their documents."""
        ids = list(dict.fromkeys(session_ids))
        for session_id in ids:
            check_identifier("session_id", session_id)
        if not ids:
            return {}
        tenants = await self._hget(ids, "tenant")
        missing = [session_id for session_id, tenant in tenants.items() if tenant is None]
        if missing:
            documents = await self._hget(missing, "doc")
            tenants.update({s: _tenant_of(doc) for s, doc in documents.items()})
        return tenants

    async def ping(self) -> bool:
        """Whether Redis answers PING within `ping_timeout_s`; never raises."""
        return await ping(self._client, self._ping_timeout_s)

    async def aclose(self) -> None:
        """Refuse new calls, wait for the queued ones, close an owned client."""
        await self._commit.aclose()
        if self._owns_client:
            await self._client.aclose()

    def _call(
        self, event: OutcomeEvent, minid: str
    ) -> tuple[tuple[str, ...], tuple[bytes | str, ...]]:
        session_id = event.session_id
        keys = self.keys
        return (
            (
                keys.session_key(session_id),
                keys.seen_key(session_id),
                keys.outcome_stream_of(session_id),
            ),
            (event.event_id, self._maxlen, minid, *event.encode_values()),
        )

    async def _hget(self, session_ids: list[str], field: str) -> dict[str, str | None]:
        pipe = self._client.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.hget(self.keys.session_key(session_id), field)
        try:
            values = await pipe.execute()
        except UNAVAILABLE as exc:
            raise _unavailable(exc, "session_tenants", {"sessions": len(session_ids)}) from exc
        return {
            session_id: None if value is None else bytes(value).decode()
            for session_id, value in zip(session_ids, values, strict=True)
        }


def _result(event: OutcomeEvent, reply: Any) -> AppendResult:
    if isinstance(reply, BaseException):
        if isinstance(reply, ResponseError):
            logger.error("outcome %r: Redis refused the write: %r", event.event_id, reply)
        if isinstance(reply, UNAVAILABLE):
            context = {"session_id": event.session_id, "event_id": event.event_id}
            raise _unavailable(reply, "append_outcomes", context) from reply
        raise reply
    if reply[0] == 1:
        return AppendResult(AppendStatus.APPENDED, reply[1].decode())
    return _DUPLICATE if reply[0] == 0 else _UNKNOWN


def _tenant_of(document: str | None) -> str | None:
    """The tenant in a stored session document (JSON), or None without one."""
    if document is None:
        return None
    tenant = orjson.loads(document).get("tenant_id")
    return tenant if isinstance(tenant, str) else None


def _context(events: Sequence[OutcomeEvent]) -> dict[str, Any]:
    return {"events": len(events), "first_event_id": events[0].event_id if events else None}


def _unavailable(
    exc: BaseException, operation: str, context: dict[str, Any]
) -> StorageUnavailableError:
    session = f"session {context['session_id']!r}: " if "session_id" in context else ""
    return StorageUnavailableError(
        f"{session}{operation} failed, Redis is unavailable: {exc}",
        context={**context, "operation": operation, "redis_error": type(exc).__name__},
    )
