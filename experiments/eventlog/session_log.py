"""`RedisSessionLog`: the session store and assignment log on Redis, with group commit.

Creating a session is one step of a server-side script (`CREATE_SESSION_SCRIPT`)
that, atomically, returns the stored document when the session exists and
otherwise appends the assignment event to the session's stream shard and
stores the document (with the session's tenant, which outcome checks read) and
its TTL. The session hash and the stream shard share a hash tag (see `keys`),
so the script runs unchanged on one Redis and on a Redis Cluster.

Group commit (`group_commit.MergedGroupCommit`): callers only queue their
session; one flusher task sends every session queued while the previous flush
was in flight, the sessions of one shard as one script call (up to
`SESSIONS_PER_SCRIPT` each), all of them in one round trip, then settles each
caller's future. The script runs each session's commands with `redis.pcall`,
so that an error (a session key of another type) fails only that session.
"""

from __future__ import annotations

import logging
from operator import itemgetter

from redis.exceptions import ResponseError

from ..context import check_identifier
from ..errors import StorageUnavailableError
from ..events import ASSIGNMENT_FIELDS, ASSIGNMENT_TYPE, SCHEMA_VERSION, AssignmentEvent
from .group_commit import (
    DEFAULT_MAX_BATCH,
    UNAVAILABLE,
    AsyncRedis,
    GroupCommit,
    GroupCommitLog,
    LuaScript,
    MergedGroupCommit,
    check_positive,
    count_redis_error,
    minid_now,
)
from .keys import KeyLayout
from .protocols import CreateResult, check_create_args

logger = logging.getLogger("voxroute.eventlog")

DEFAULT_SESSION_TTL_S = 7 * 24 * 3600

SESSIONS_PER_SCRIPT = 64
"""The most sessions one script call creates (Redis runs nothing else meanwhile)."""

# The XADD writes every field of ASSIGNMENT_FIELDS, in that order. The values
# that are the same for every event (`type`, `v`) are written into the script;
# a session passes its document, its event id (the session hash records it
# too) and its event's other values.
_IN_SCRIPT = {"type": ASSIGNMENT_TYPE.decode(), "v": str(SCHEMA_VERSION)}
_EVENT_ID = ASSIGNMENT_FIELDS.index("event_id")
_PASSED = tuple(
    i for i, name in enumerate(ASSIGNMENT_FIELDS) if name not in _IN_SCRIPT and i != _EVENT_ID
)
"""The indexes (in `encode_values()`) of the values a session passes after its event id."""
_passed_values = itemgetter(*_PASSED)
_ARGS_PER_SESSION = 2 + len(_PASSED)


def _xadd_value(index: int, name: str) -> str:
    if name in _IN_SCRIPT:
        return f"'{_IN_SCRIPT[name]}'"
    if index == _EVENT_ID:
        return "ARGV[a + 1]"
    return f"ARGV[a + {2 + _PASSED.index(index)}]"


_XADD_FIELDS = ", ".join(
    f"'{name}', {_xadd_value(i, name)}" for i, name in enumerate(ASSIGNMENT_FIELDS)
)
_TENANT = f"ARGV[a + {2 + _PASSED.index(ASSIGNMENT_FIELDS.index('tenant_id'))}]"

# KEYS[1] the assignment stream shard, then each session's hash (every key in
# one shard). ARGV[1] TTL seconds (0: none), ARGV[2] approximate MAXLEN (0:
# none), ARGV[3] approximate MINID (0: none), then per session: its document,
# its event id and its event's other values (ASSIGNMENT_FIELDS without type, v
# and event_id). Returns one reply per session, in order: {1, stream id} when
# its event is the recorded one, {0, stored document} otherwise, or the error
# of the command that failed (nothing after it is written for that session).
CREATE_SESSION_SCRIPT = f"""
local out = {{}}
local ttl, maxlen = ARGV[1], ARGV[2]
for e = 1, #KEYS - 1 do
  local session, a = KEYS[e + 1], 4 + (e - 1) * {_ARGS_PER_SESSION}
  local stored = redis.pcall('HMGET', session, 'doc', 'event', 'stream')
  if stored.err then out[e] = stored
  elseif stored[1] then
    if stored[2] == ARGV[a + 1] then out[e] = {{1, stored[3]}} else out[e] = {{0, stored[1]}} end
  else
    local id
    if maxlen == '0' then
      id = redis.pcall('XADD', KEYS[1], '*', {_XADD_FIELDS})
    else
      id = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', {_XADD_FIELDS})
    end
    if type(id) == 'table' then out[e] = id
    else
      local done = redis.pcall('HSET', session, 'doc', ARGV[a], 'event', ARGV[a + 1],
        'stream', id, 'tenant', {_TENANT})
      if type(done) ~= 'table' and ttl ~= '0' then done = redis.pcall('EXPIRE', session, ttl) end
      if type(done) == 'table' then out[e] = done else out[e] = {{1, id}} end
    end
  end
end
if ARGV[3] ~= '0' then redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[3]) end
return out
"""
_SCRIPT = LuaScript(CREATE_SESSION_SCRIPT)
CREATE_SESSION_SHA = _SCRIPT.sha


def create_session_args(document: bytes, event: AssignmentEvent) -> tuple[bytes | str, ...]:
    """One session's arguments of `CREATE_SESSION_SCRIPT`."""
    values = event.encode_values()
    return (document, values[_EVENT_ID], *_passed_values(values))


class RedisSessionLog(GroupCommitLog):
    """A `SessionLog` on Redis (`redis.asyncio.Redis` or `RedisCluster`).

    `client` must return bytes (`decode_responses=False`); it is closed by
    `aclose` only when the log made it (`from_url`, whose keyword arguments are
    this constructor's). `session_ttl_s` is the TTL of a session document
    (None: no expiry); `stream_maxlen` caps each stream shard approximately
    (`XADD MAXLEN ~`, None: never trimmed) and `stream_minid_age_s` drops
    entries older than that many seconds approximately (`XTRIM MINID ~`, None:
    never). `max_batch` caps the calls of one pipeline. `flushes` counts the
    pipelines sent and `flushed` the script calls they carried.
    """

    def __init__(
        self,
        client: AsyncRedis,
        keys: KeyLayout | None = None,
        *,
        session_ttl_s: int | None = DEFAULT_SESSION_TTL_S,
        stream_maxlen: int | None = None,
        stream_minid_age_s: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        ping_timeout_s: float = 1.0,
        owns_client: bool = False,
    ) -> None:
        check_positive("session_ttl_s", session_ttl_s)
        check_positive("max_batch", max_batch)
        self._ttl = str(session_ttl_s or 0)
        super().__init__(
            client,
            keys,
            _SCRIPT,
            stream_maxlen=stream_maxlen,
            stream_minid_age_s=stream_minid_age_s,
            max_batch=max_batch,
            ping_timeout_s=ping_timeout_s,
            owns_client=owns_client,
            what="sessions",
        )

    def _group_commit(
        self, client: AsyncRedis, script: LuaScript, max_batch: int, what: str
    ) -> GroupCommit:
        return MergedGroupCommit(
            client,
            script,
            header=self._script_header,
            calls_per_script=SESSIONS_PER_SCRIPT,
            max_batch=max_batch,
            what=what,
        )

    def _script_header(self) -> tuple[str, ...]:
        minid = minid_now(self._minid_age_ms) if self._minid_age_ms else "0"
        return (self._ttl, self._maxlen, minid)

    async def create_session(
        self, session_id: str, document: bytes, event: AssignmentEvent
    ) -> CreateResult:
        """See `SessionLog.create_session`; the call joins the next group commit."""
        check_create_args(session_id, document, event)
        if self._commit.closed:
            raise StorageUnavailableError(
                f"session {session_id!r}: the session log is closed",
                context={"session_id": session_id},
            )
        keys = (self.keys.assignment_stream_of(session_id), self.keys.session_key(session_id))
        try:
            created, value = await self._commit.submit(keys, create_session_args(document, event))
        except UNAVAILABLE as exc:
            if isinstance(exc, ResponseError):
                logger.error(
                    "session %r: Redis refused the write: %r",
                    session_id,
                    exc,
                    extra={"session_id": session_id, "tenant_id": event.tenant_id},
                )
            raise unavailable(exc, session_id, "create_session") from exc
        if created == 1:
            return CreateResult(document, created=True, stream_id=value.decode())
        return CreateResult(bytes(value), created=False, stream_id=None)

    async def get_session(self, session_id: str) -> bytes | None:
        """The stored document of `session_id` (one HGET), or None."""
        check_identifier("session_id", session_id)
        try:
            document = await self._client.hget(self.keys.session_key(session_id), "doc")
        except UNAVAILABLE as exc:
            raise unavailable(exc, session_id, "get_session") from exc
        return document.encode() if isinstance(document, str) else document


def unavailable(exc: BaseException, session_id: str, operation: str) -> StorageUnavailableError:
    """The error of a session operation that Redis failed (counted as a Redis error)."""
    count_redis_error(operation, exc)
    return StorageUnavailableError(
        f"session {session_id!r}: {operation} failed, Redis is unavailable: {exc}",
        context={
            "session_id": session_id,
            "operation": operation,
            "redis_error": type(exc).__name__,
        },
    )
