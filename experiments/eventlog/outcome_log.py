"""`RedisOutcomeLog`: the outcome stream on Redis, exactly once per (session, event id).

The events of one call are grouped by shard, in order, and each group of up to
`EVENTS_PER_SCRIPT` events is one server-side script call
(`APPEND_OUTCOMES_SCRIPT`) that, for each event in turn, atomically:

1. refuses the event when the session's hash does not exist (`unknown_session`);
2. adds the event id to the session's dedupe set (`<p>:{s<n>}:seen:<session>`);
   when it was there already, the event is a `duplicate` and nothing is written;
3. otherwise appends the event to the outcome stream shard (`<p>:{s<n>}:outcomes`),
   trimmed by an approximate MAXLEN and/or MINID when configured, and returns
   its stream id (`appended`).

The dedupe set expires with the session (it takes the session hash's remaining
TTL when it is created), and every key of one script call shares the shard's
hash tag, so the script runs unchanged on a Redis Cluster. Concurrent callers
share pipelines (`group_commit.GroupCommit`). `session_tenants` reads the
tenants of one shard's sessions with one read-only script call
(`SESSION_TENANTS_SCRIPT`), the shards' calls in one pipeline. Retrying or
replaying an event (same session, same event id) is therefore always safe:
clients deliver at least once, the log keeps each event once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from ..context import check_identifier
from ..errors import StorageUnavailableError
from ..events import OUTCOME_FIELDS, OutcomeEvent
from .group_commit import (
    DEFAULT_MAX_BATCH,
    UNAVAILABLE,
    AsyncRedis,
    GroupCommitLog,
    LuaScript,
    count_redis_error,
    minid_now,
)
from .keys import KeyLayout
from .protocols import AppendResult, AppendStatus

logger = logging.getLogger("voxroute.eventlog")

_FIELDS = len(OUTCOME_FIELDS)
_XADD_FIELDS = ", ".join(
    f"'{name.decode()}', ARGV[a + {i + 1}]" for i, name in enumerate(OUTCOME_FIELDS)
)
EVENTS_PER_SCRIPT = 100
"""The most events one script call carries (Redis runs nothing else meanwhile)."""

# KEYS[1] the outcome stream shard, then per event: its session hash, its dedupe
# set (every key of the call in one shard). ARGV[1] approximate MAXLEN (0: none),
# ARGV[2] approximate MINID (0: none), then per event: its id, its values
# (OUTCOME_FIELDS). Returns one reply per event, in order: the stream id
# (appended), 0 (duplicate) or 2 (unknown session).
APPEND_OUTCOMES_SCRIPT = f"""
local out = {{}}
for e = 1, (#KEYS - 1) / 2 do
  local session, seen = KEYS[2 * e], KEYS[2 * e + 1]
  local a = 2 + (e - 1) * {_FIELDS + 1} + 1
  if redis.call('EXISTS', session) == 0 then out[e] = 2
  elseif redis.call('SADD', seen, ARGV[a]) == 0 then out[e] = 0
  else
    if redis.call('SCARD', seen) == 1 then
      local ttl = redis.call('PTTL', session)
      if ttl > 0 then redis.call('PEXPIRE', seen, ttl) end
    end
    if ARGV[1] == '0' then
      out[e] = redis.call('XADD', KEYS[1], '*', {_XADD_FIELDS})
    else
      out[e] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', {_XADD_FIELDS})
    end
  end
end
if ARGV[2] ~= '0' then redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2]) end
return out
"""
_SCRIPT = LuaScript(APPEND_OUTCOMES_SCRIPT)
APPEND_OUTCOMES_SHA = _SCRIPT.sha

# KEYS: session hashes of one shard. Returns the `tenant` field of each (nil: none).
SESSION_TENANTS_SCRIPT = """
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGET', KEYS[i], 'tenant') end
return out
"""
_TENANTS = LuaScript(SESSION_TENANTS_SCRIPT)
_DUPLICATE = AppendResult(AppendStatus.DUPLICATE)
_UNKNOWN = AppendResult(AppendStatus.UNKNOWN_SESSION)


class RedisOutcomeLog(GroupCommitLog):
    """An `OutcomeLog` on Redis (`redis.asyncio.Redis` or `RedisCluster`, bytes replies).

    `stream_maxlen` caps each outcome stream shard approximately (None: never),
    `stream_minid_age_s` drops entries older than that many seconds
    approximately (None: never). `client` is closed by `aclose` only when the
    log made it (`from_url`, whose keyword arguments are this constructor's).
    Errors: `StorageUnavailableError` when Redis is away, times out or refuses
    a write (appending the same events again is safe); `ExperimentError`
    (`INVALID_INPUT`) for bad ids, before any I/O.
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
        super().__init__(
            client,
            keys,
            _SCRIPT,
            stream_maxlen=stream_maxlen,
            stream_minid_age_s=stream_minid_age_s,
            max_batch=max_batch,
            ping_timeout_s=ping_timeout_s,
            owns_client=owns_client,
            what="outcomes",
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
        keys = self.keys
        by_shard: dict[int, list[int]] = {}
        for i, event in enumerate(events):
            by_shard.setdefault(keys.shard_of(event.session_id), []).append(i)
        calls: list[tuple[list[int], asyncio.Future[Any]]] = []
        for shard, indexes in by_shard.items():
            for start in range(0, len(indexes), EVENTS_PER_SCRIPT):
                chunk = indexes[start : start + EVENTS_PER_SCRIPT]
                calls.append((chunk, self._commit.submit(*self._call(shard, chunk, events, minid))))
        await asyncio.gather(*(future for _, future in calls), return_exceptions=True)
        replies: list[Any] = [None] * len(events)
        for chunk, future in calls:
            failure = _failure(future)
            if failure is not None:
                for i in chunk:
                    replies[i] = failure
            else:
                for i, reply in zip(chunk, future.result(), strict=True):
                    replies[i] = reply
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

    def _call(
        self, shard: int, chunk: list[int], events: Sequence[OutcomeEvent], minid: str
    ) -> tuple[tuple[str, ...], tuple[bytes | str, ...]]:
        """The keys and arguments of one script call: the events at `chunk`, all of `shard`."""
        keys = self.keys
        call_keys = [keys.outcome_stream(shard)]
        args: list[bytes | str] = [self._maxlen, minid]
        for i in chunk:
            event = events[i]
            call_keys.append(keys.session_key(event.session_id))
            call_keys.append(keys.seen_key(event.session_id))
            args.append(event.event_id)
            args.extend(event.encode_values())
        return tuple(call_keys), tuple(args)

    async def _hget(self, session_ids: list[str], field: str) -> dict[str, str | None]:
        # On a cluster the per-shard tenants script intermittently met "Connection
        # closed by server" under load (tests/service/test_cluster_load.py, 1 run in
        # 3); plain pipelined HGETs there until that is understood.
        if field == "tenant" and not isinstance(self._client, RedisCluster):
            return await self._tenants(session_ids)
        pipe = self._client.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.hget(self.keys.session_key(session_id), field)
        try:
            values = await pipe.execute()
        except UNAVAILABLE as exc:
            raise _unavailable(exc, "session_tenants", {"sessions": len(session_ids)}) from exc
        return _decoded(session_ids, values)

    async def _tenants(self, session_ids: list[str]) -> dict[str, str | None]:
        """The `tenant` field of each session: one script call per shard, one round trip."""
        by_shard: dict[int, list[str]] = {}
        for session_id in session_ids:
            by_shard.setdefault(self.keys.shard_of(session_id), []).append(session_id)
        groups = list(by_shard.values())
        calls = [tuple(self.keys.session_key(s) for s in group) for group in groups]
        try:
            replies = await self._evalsha_all(_TENANTS, calls)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                await self._client.script_load(_TENANTS.source)
                resent = await self._evalsha_all(_TENANTS, [calls[i] for i in missing])
                for i, reply in zip(missing, resent, strict=True):
                    replies[i] = reply
            for reply in replies:
                if isinstance(reply, BaseException):
                    raise reply
        except UNAVAILABLE as exc:
            raise _unavailable(exc, "session_tenants", {"sessions": len(session_ids)}) from exc
        tenants: dict[str, str | None] = {}
        for group, values in zip(groups, replies, strict=True):
            tenants.update(_decoded(group, values))
        return {session_id: tenants[session_id] for session_id in session_ids}

    async def _evalsha_all(self, script: LuaScript, calls: list[tuple[str, ...]]) -> list[Any]:
        """The replies of one EVALSHA of `script` per key tuple, an error as its reply."""
        if len(calls) == 1:  # a pipeline of one costs more than the command itself
            try:
                return [await self._client.evalsha(script.sha, len(calls[0]), *calls[0])]
            except ResponseError as exc:
                return [exc]
        pipe = self._client.pipeline(transaction=False)
        for call_keys in calls:
            # execute_command: redis-py refuses ClusterPipeline.evalsha
            pipe.execute_command("EVALSHA", script.sha, len(call_keys), *call_keys)
        return list(await pipe.execute(raise_on_error=False))


def _failure(future: asyncio.Future[Any]) -> BaseException | None:
    """The error a settled future failed with (None: it has a result)."""
    return asyncio.CancelledError() if future.cancelled() else future.exception()


def _result(event: OutcomeEvent, reply: Any) -> AppendResult:
    if isinstance(reply, BaseException):
        if isinstance(reply, ResponseError):
            logger.error(
                "outcome %r: Redis refused the write: %r",
                event.event_id,
                reply,
                extra={"session_id": event.session_id, "event_id": event.event_id},
            )
        if isinstance(reply, UNAVAILABLE):
            context = {"session_id": event.session_id, "event_id": event.event_id}
            raise _unavailable(reply, "append_outcomes", context) from reply
        raise reply
    if isinstance(reply, bytes):
        return AppendResult(AppendStatus.APPENDED, reply.decode())
    return _DUPLICATE if reply == 0 else _UNKNOWN


def _decoded(session_ids: list[str], values: Sequence[Any]) -> dict[str, str | None]:
    return {
        session_id: None if value is None else bytes(value).decode()
        for session_id, value in zip(session_ids, values, strict=True)
    }


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
    count_redis_error(operation, exc)
    session = f"session {context['session_id']!r}: " if "session_id" in context else ""
    return StorageUnavailableError(
        f"{session}{operation} failed, Redis is unavailable: {exc}",
        context={**context, "operation": operation, "redis_error": type(exc).__name__},
    )
