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

from redis.exceptions import ResponseError

from ..context import check_identifier
from ..errors import StorageUnavailableError
from ..events import ASSIGNMENT_FIELDS, AssignmentEvent
from ._common import check_create_args
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
from .protocols import CreateResult

logger = logging.getLogger("voxroute.eventlog")

DEFAULT_SESSION_TTL_S = 7 * 24 * 3600

# The XADD field list: each stream field name with the ARGV slot of its value.
_XADD_FIELDS = ", ".join(f"'{name}', ARGV[{5 + i}]" for i, name in enumerate(ASSIGNMENT_FIELDS))
_TENANT_ARG = 5 + ASSIGNMENT_FIELDS.index("tenant_id")
_MINID_ARG = 5 + len(ASSIGNMENT_FIELDS)

# KEYS[1] session hash, KEYS[2] assignment stream shard.
# ARGV[1] document, ARGV[2] event id, ARGV[3] TTL seconds (0: none),
# ARGV[4] approximate MAXLEN (0: none), ARGV[5..] the event's values (ASSIGNMENT_FIELDS),
# then, optionally, an approximate MINID trim (absent or 0: none).
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


class RedisSessionLog:
    """A `SessionLog` on Redis (`redis.asyncio.Redis` or `RedisCluster`).

    `client` must return bytes (`decode_responses=False`); it is closed by
    `aclose` only when the log made it (`from_url`). `session_ttl_s` is the TTL
    of a session document (None: no expiry); `stream_maxlen` caps each stream
    shard approximately (`XADD MAXLEN ~`, None: never trimmed) and
    `stream_minid_age_s` drops entries older than that many seconds
    approximately (`XTRIM MINID ~`, None: never). `max_batch` caps the calls of
    one pipeline. `flushes` counts the pipelines sent and `flushed` the script
    calls they carried.
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
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisSessionLog needs a client with decode_responses=False")
        check_positive("session_ttl_s", session_ttl_s)
        check_positive("stream_maxlen", stream_maxlen)
        check_positive("stream_minid_age_s", stream_minid_age_s)
        check_positive("max_batch", max_batch)
        self.keys = keys or KeyLayout()
        self._client = client
        self._owns_client = owns_client
        self._ttl = str(session_ttl_s or 0)
        self._maxlen = str(stream_maxlen or 0)
        self._minid_age_ms = (stream_minid_age_s or 0) * 1000
        self._ping_timeout_s = ping_timeout_s
        self._commit = GroupCommit(client, _SCRIPT, max_batch=max_batch, what="sessions")

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
        session_ttl_s: int | None = DEFAULT_SESSION_TTL_S,
        stream_maxlen: int | None = None,
        stream_minid_age_s: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        socket_timeout_s: float = 2.0,
        connect_timeout_s: float = 1.0,
    ) -> RedisSessionLog:
        """A log with its own client for `url` (`redis://host:port/db`, `unix://path`):
        bounded socket timeouts and one quick reconnect, so a Redis that is away
        fails calls within about the timeouts instead of hanging."""
        return cls(
            bounded_client(url, socket_timeout_s, connect_timeout_s),
            keys=keys,
            session_ttl_s=session_ttl_s,
            stream_maxlen=stream_maxlen,
            stream_minid_age_s=stream_minid_age_s,
            max_batch=max_batch,
            owns_client=True,
        )

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
        args: tuple[bytes | str, ...] = (
            document,
            event.event_id,
            self._ttl,
            self._maxlen,
            *event.encode_values(),
        )
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

    async def ping(self) -> bool:
        """Whether Redis answers PING within `ping_timeout_s`."""
        return await ping(self._client, self._ping_timeout_s)

    async def aclose(self) -> None:
        """Refuse new calls, wait for the queued ones, close an owned client."""
        await self._commit.aclose()
        if self._owns_client:
            await self._client.aclose()


def unavailable(exc: BaseException, session_id: str, operation: str) -> StorageUnavailableError:
    return StorageUnavailableError(
        f"session {session_id!r}: {operation} failed, Redis is unavailable: {exc}",
        context={
            "session_id": session_id,
            "operation": operation,
            "redis_error": type(exc).__name__,
        },
    )
