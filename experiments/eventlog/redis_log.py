"""`RedisSessionLog`: the session store and assignment log on Redis, with group commit.

Creating a session is one server-side script (`CREATE_SESSION_SCRIPT`) that,
atomically, returns the stored document when the session exists and otherwise
appends the assignment event to the session's stream shard and stores the
document (with the session's tenant, which outcome checks read) and its TTL.
Both keys share a hash tag (see `keys`), so the script runs unchanged on one
Redis and on a Redis Cluster.

Group commit (`group_commit.GroupCommit`): callers only queue their script call;
one flusher task sends every call queued while the previous flush was in flight
as one pipeline of EVALSHAs, then settles each caller's future.
"""

from __future__ import annotations

import logging
from operator import itemgetter

from redis.exceptions import ResponseError

from ..context import check_identifier
from ..errors import StorageUnavailableError
from ..events import ASSIGNMENT_FIELDS, ASSIGNMENT_TYPE, SCHEMA_VERSION, AssignmentEvent
from ._common import check_create_args
from .group_commit import (
    DEFAULT_MAX_BATCH,
    UNAVAILABLE,
    AsyncRedis,
    GroupCommitLog,
    LuaScript,
    check_positive,
    minid_now,
)
from .keys import KeyLayout
from .protocols import CreateResult

logger = logging.getLogger("voxroute.eventlog")

DEFAULT_SESSION_TTL_S = 7 * 24 * 3600

# The XADD writes every field of ASSIGNMENT_FIELDS, in that order. The values
# that are the same for every event (`type`, `v`) are written into the script
# and the event id is ARGV[2] (the session hash records it too), so a call
# carries only the values of its own event: fewer arguments to pack, send and
# hand to Lua.
_IN_SCRIPT = {"type": ASSIGNMENT_TYPE.decode(), "v": str(SCHEMA_VERSION)}
_EVENT_ID = ASSIGNMENT_FIELDS.index("event_id")
_PASSED = tuple(
    i for i, name in enumerate(ASSIGNMENT_FIELDS) if name not in _IN_SCRIPT and i != _EVENT_ID
)
"""The indexes (in `encode_values()`) of the values a call passes, from ARGV[5] on."""
_passed_values = itemgetter(*_PASSED)


def _xadd_value(index: int, name: str) -> str:
    if name in _IN_SCRIPT:
        return f"'{_IN_SCRIPT[name]}'"
    if index == _EVENT_ID:
        return "ARGV[2]"
    return f"ARGV[{5 + _PASSED.index(index)}]"


_XADD_FIELDS = ", ".join(
    f"'{name}', {_xadd_value(i, name)}" for i, name in enumerate(ASSIGNMENT_FIELDS)
)
_TENANT_ARG = 5 + _PASSED.index(ASSIGNMENT_FIELDS.index("tenant_id"))
_MINID_ARG = 5 + len(_PASSED)

# KEYS[1] session hash, KEYS[2] assignment stream shard.
# ARGV[1] document, ARGV[2] event id, ARGV[3] TTL seconds (0: none),
# ARGV[4] approximate MAXLEN (0: none), ARGV[5..] the event's other values
# (ASSIGNMENT_FIELDS without type, v and event_id), then, optionally, an
# approximate MINID trim (absent or 0: none).
# Returns {1, stream id} when this event is the recorded one, {0, document} otherwise.
CREATE_SESSION_SCRIPT = f"""
local stored = redis.call('HMGET', KEYS[1], 'doc', 'event', 'stream')
if stored[1] then
  if stored[2] == ARGV[2] then return {{1, stored[3]}} end
  return {{0, stored[1]}}
end
local id
if ARGV[4] == '0' then
  id = redis.call('XADD', KEYS[2], '*', {_XADD_FIELDS})
else
  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', {_XADD_FIELDS})
end
local minid = ARGV[{_MINID_ARG}]
if minid and minid ~= '0' then redis.call('XTRIM', KEYS[2], 'MINID', '~', minid) end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'event', ARGV[2], 'stream', id,
  'tenant', ARGV[{_TENANT_ARG}])
if ARGV[3] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {{1, id}}
"""
_SCRIPT = LuaScript(CREATE_SESSION_SCRIPT)
CREATE_SESSION_SHA = _SCRIPT.sha


def create_session_args(
    document: bytes, event: AssignmentEvent, ttl_s: str = "0", maxlen: str = "0"
) -> tuple[bytes | str, ...]:
    """The ARGV of `CREATE_SESSION_SCRIPT` (without the optional MINID)."""
    values = event.encode_values()
    return (document, values[_EVENT_ID], ttl_s, maxlen, *_passed_values(values))


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
        self._ttl = str(session_ttl_s or 0)

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
        keys = (self.keys.session_key(session_id), self.keys.assignment_stream_of(session_id))
        args = create_session_args(document, event, self._ttl, self._maxlen)
        if self._minid_age_ms:
            args = (*args, minid_now(self._minid_age_ms))
        try:
            created, value = await self._commit.submit(keys, args)
        except UNAVAILABLE as exc:
            if isinstance(exc, ResponseError):
                logger.error("session %r: Redis refused the write: %r", session_id, exc)
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
    return StorageUnavailableError(
        f"session {session_id!r}: {operation} failed, Redis is unavailable: {exc}",
        context={
            "session_id": session_id,
            "operation": operation,
            "redis_error": type(exc).__name__,
        },
    )
