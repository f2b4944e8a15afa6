"""`RedisSessionLog`: the session store and assignment log on Redis, with group commit.

Creating a session is one server-side script (`CREATE_SESSION_SCRIPT`) that,
atomically, returns the stored document when the session exists and otherwise
appends the assignment event to the session's stream shard and stores the
document with its TTL. Both keys share a hash tag (see `keys`), so the script
runs unchanged on one Redis and on a Redis Cluster.

Group commit: callers only queue their script call; one flusher task sends every
call queued while the previous flush was in flight as one pipeline of EVALSHAs
(at most `max_batch`), then settles each caller's future. A lone call goes out
at once; under load the calls of many requests share one round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from ..context import check_identifier
from ..errors import StorageUnavailableError
from ..events import ASSIGNMENT_FIELDS, AssignmentEvent
from ._common import check_create_args
from .keys import KeyLayout
from .protocols import CreateResult

logger = logging.getLogger("voxroute.eventlog")

AsyncRedis = Redis | RedisCluster
DEFAULT_SESSION_TTL_S = 7 * 24 * 3600
DEFAULT_MAX_BATCH = 512

# The XADD field list: each stream field name with the ARGV slot of its value.
_XADD_FIELDS = ", ".join(f"'{name}', ARGV[{5 + i}]" for i, name in enumerate(ASSIGNMENT_FIELDS))

# KEYS[1] session hash, KEYS[2] assignment stream shard.
# ARGV[1] document, ARGV[2] event id, ARGV[3] TTL seconds (0: none),
# ARGV[4] approximate MAXLEN (0: none), ARGV[5..] the event's values (ASSIGNMENT_FIELDS).
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
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'event', ARGV[2], 'stream', id)
if ARGV[3] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {{1, id}}
"""
CREATE_SESSION_SHA = hashlib.sha1(CREATE_SESSION_SCRIPT.encode(), usedforsecurity=False).hexdigest()

_UNAVAILABLE = (RedisError, OSError)  # OSError covers socket errors and TimeoutError


@dataclass(slots=True)
class _Call:
    """One queued `create_session`: its script arguments and its caller's future."""

    session_id: str
    document: bytes
    keys: tuple[str, str]
    args: tuple[bytes | str, ...]
    future: asyncio.Future[CreateResult]


class RedisSessionLog:
    """A `SessionLog` on Redis (`redis.asyncio.Redis` or `RedisCluster`).

    `client` must return bytes (`decode_responses=False`); it is closed by
    `aclose` only when the log made it (`from_url`). `session_ttl_s` is the TTL
    of a session document (None: no expiry); `stream_maxlen` caps each stream
    shard approximately (`XADD MAXLEN ~`, None: never trimmed). `max_batch`
    caps the calls of one pipeline. `flushes` counts the pipelines sent and
    `flushed` the script calls they carried.
    """

    def __init__(
        self,
        client: AsyncRedis,
        keys: KeyLayout | None = None,
        *,
        session_ttl_s: int | None = DEFAULT_SESSION_TTL_S,
        stream_maxlen: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        ping_timeout_s: float = 1.0,
        owns_client: bool = False,
    ) -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisSessionLog needs a client with decode_responses=False")
        _check_positive("session_ttl_s", session_ttl_s)
        _check_positive("stream_maxlen", stream_maxlen)
        _check_positive("max_batch", max_batch)
        self.keys = keys or KeyLayout()
        self.flushes = 0
        self.flushed = 0
        self._client = client
        self._owns_client = owns_client
        self._ttl = str(session_ttl_s or 0)
        self._maxlen = str(stream_maxlen or 0)
        self._max_batch = max_batch
        self._ping_timeout_s = ping_timeout_s
        self._queue: list[_Call] = []
        self._in_flight: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        keys: KeyLayout | None = None,
        session_ttl_s: int | None = DEFAULT_SESSION_TTL_S,
        stream_maxlen: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        socket_timeout_s: float = 2.0,
        connect_timeout_s: float = 1.0,
    ) -> RedisSessionLog:
        """A log with its own client for `url` (`redis://host:port/db`, `unix://path`):
        bounded socket timeouts and one quick reconnect, so a Redis that is away
        fails calls within about the timeouts instead of hanging."""
        client = Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), 1),
        )
        return cls(
            client,
            keys=keys,
            session_ttl_s=session_ttl_s,
            stream_maxlen=stream_maxlen,
            max_batch=max_batch,
            owns_client=True,
        )

    async def create_session(
        self, session_id: str, document: bytes, event: AssignmentEvent
    ) -> CreateResult:
        """See `SessionLog.create_session`; the call joins the next group commit."""
        check_create_args(session_id, document, event)
        if self._closed:
            raise StorageUnavailableError(
                f"session {session_id!r}: the session log is closed",
                context={"session_id": session_id},
            )
        call = _Call(
            session_id=session_id,
            document=document,
            keys=(self.keys.session_key(session_id), self.keys.assignment_stream_of(session_id)),
            args=(document, event.event_id, self._ttl, self._maxlen, *event.encode_values()),
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue.append(call)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_queue(), name="voxroute-group-commit")
        return await call.future

    async def get_session(self, session_id: str) -> bytes | None:
        """The stored document of `session_id` (one HGET), or None."""
        check_identifier("session_id", session_id)
        try:
            document = await self._client.hget(self.keys.session_key(session_id), "doc")
        except _UNAVAILABLE as exc:
            raise _unavailable(exc, session_id, "get_session") from exc
        return document.encode() if isinstance(document, str) else document

    async def ping(self) -> bool:
        """Whether Redis answers PING within `ping_timeout_s`."""
        try:
            async with asyncio.timeout(self._ping_timeout_s):
                return bool(await self._client.ping())
        except _UNAVAILABLE:  # TimeoutError is an OSError
            return False

    async def aclose(self) -> None:
        """Refuse new calls, wait for the queued ones, close an owned client."""
        self._closed = True
        if self._flusher is not None:
            await asyncio.wait([self._flusher])
        if self._owns_client:
            await self._client.aclose()

    async def _flush_queue(self) -> None:
        try:
            while self._queue:
                self._in_flight = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._flush(self._in_flight)
                self._in_flight = []
        except asyncio.CancelledError:  # the loop is shutting down: release every caller
            for call in (*self._in_flight, *self._queue):
                call.future.cancel()
            self._in_flight, self._queue = [], []
            raise
        finally:
            self._flusher = None

    async def _flush(self, batch: list[_Call]) -> None:
        self.flushes += 1
        self.flushed += len(batch)
        try:
            replies = await self._send(batch)
        except _UNAVAILABLE as exc:
            logger.warning("group commit of %d sessions failed: %r", len(batch), exc)
            for call in batch:
                _settle(call, _unavailable(exc, call.session_id, "create_session"))
            return
        except Exception as exc:  # a bug: fail this batch, keep serving the next ones
            logger.exception("group commit of %d sessions failed", len(batch))
            for call in batch:
                _settle(call, exc)
            return
        for call, reply in zip(batch, replies, strict=True):
            _settle(call, _result(call, reply))

    async def _send(self, batch: list[_Call]) -> list[Any]:
        """One pipeline of EVALSHAs; on NOSCRIPT, load the script and resend those."""
        replies = await self._pipeline(batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self._client.script_load(CREATE_SESSION_SCRIPT)
            resent = await self._pipeline([batch[i] for i in missing])
            for i, reply in zip(missing, resent, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        """The replies of `batch`, a script error as the reply of its call."""
        if len(batch) == 1:  # a pipeline of one costs more than the command itself
            call = batch[0]
            try:
                return [await self._client.evalsha(CREATE_SESSION_SHA, 2, *call.keys, *call.args)]
            except ResponseError as exc:
                return [exc]
        pipe = self._client.pipeline(transaction=False)
        for call in batch:
            pipe.execute_command("EVALSHA", CREATE_SESSION_SHA, 2, *call.keys, *call.args)
        return list(await pipe.execute(raise_on_error=False))


def _result(call: _Call, reply: Any) -> CreateResult | Exception:
    if isinstance(reply, _UNAVAILABLE):
        logger.error("session %r: Redis refused the write: %r", call.session_id, reply)
        return _unavailable(reply, call.session_id, "create_session")
    created, value = reply
    if created == 1:
        return CreateResult(call.document, created=True, stream_id=value.decode())
    return CreateResult(bytes(value), created=False, stream_id=None)


def _settle(call: _Call, outcome: CreateResult | BaseException) -> None:
    if call.future.done():  # the caller was cancelled
        return
    if isinstance(outcome, BaseException):
        call.future.set_exception(outcome)
    else:
        call.future.set_result(outcome)


def _unavailable(exc: BaseException, session_id: str, operation: str) -> StorageUnavailableError:
    return StorageUnavailableError(
        f"session {session_id!r}: {operation} failed, Redis is unavailable: {exc}",
        context={
            "session_id": session_id,
            "operation": operation,
            "redis_error": type(exc).__name__,
        },
    )


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
