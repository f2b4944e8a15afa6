"""Group commit of server-side script calls, and what else the session log and
the outcome log share: their base class (`GroupCommitLog`) and Redis helpers.

Callers only queue a script call (its keys and arguments) and await a future.
One flusher task sends every call queued while the previous flush was in
flight as one pipeline of EVALSHAs (at most `max_batch`), then settles each
future with the script's reply. A lone call goes out at once as a bare EVALSHA;
under load the calls of many requests share one round trip.

`MergedGroupCommit` goes one step further for a script written to take many
calls at once: the queued calls that share their first key (a stream shard,
hence one cluster slot) become one script call, whose keys are that key and
then each call's other keys, and whose arguments are a shared header (made at
flush time) and then each call's arguments; the script returns one reply per
call. One script call instead of one per call costs Redis and Python much
less per call (bench/bench_sessions.py; figures in the README).

Replies are raw: a script's error reply (`ResponseError`) fails only its own
caller (for a merged script, an error reply in the place of a call); a
connection error or timeout fails every call of the batch with that error. The
logs turn both into `StorageUnavailableError` with their context.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..telemetry import GROUP_COMMIT_BATCH_SIZE, REDIS_ERRORS, STREAM_WRITE_SECONDS, Children
from .connect import async_client
from .keys import KeyLayout

logger = logging.getLogger("voxroute.eventlog")

AsyncRedis = Redis | RedisCluster
DEFAULT_MAX_BATCH = 512
UNAVAILABLE = (RedisError, OSError)
"""What a Redis that is away or failing raises (OSError covers sockets and TimeoutError)."""
_REDIS_ERRORS = Children(REDIS_ERRORS)


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A script's source and its SHA1, the name EVALSHA calls it by."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)

    async def call(self, client: AsyncRedis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA of this script, loading it first when the server does not know it."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


@dataclass(slots=True)
class _Call:
    keys: tuple[str, ...]
    args: tuple[bytes | str, ...]
    future: asyncio.Future[Any]


class GroupCommit:
    """Sends queued calls of one script in shared pipelines (see the module docstring).

    `client` must return bytes. `flushes` counts the pipelines sent and
    `flushed` the calls they carried; `what` names the calls in log lines and
    is the `log` label of the batch size and write time metrics.
    """

    def __init__(
        self,
        client: AsyncRedis,
        script: LuaScript,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        what: str = "script calls",
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        self.script = script
        self.flushes = 0
        self.flushed = 0
        self.closed = False
        self._client = client
        self._max_batch = max_batch
        self._what = what
        self._batch_sizes = GROUP_COMMIT_BATCH_SIZE.labels(what)
        self._write_seconds = STREAM_WRITE_SECONDS.labels(what)
        self._queue: list[_Call] = []
        self._in_flight: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(self, keys: tuple[str, ...], args: tuple[bytes | str, ...]) -> asyncio.Future[Any]:
        """Queue one call; the future gets its reply or its error. Raises
        `RuntimeError` after `aclose` (callers check `closed` first)."""
        if self.closed:
            raise RuntimeError("the group commit is closed")
        call = _Call(keys, args, asyncio.get_running_loop().create_future())
        self._queue.append(call)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_queue(), name="voxroute-group-commit")
        return call.future

    async def aclose(self) -> None:
        """Refuse new calls and wait until the queued ones are settled."""
        self.closed = True
        if self._flusher is not None:
            await asyncio.wait([self._flusher])

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
        self._batch_sizes.observe(len(batch))
        start = time.perf_counter()
        try:
            replies = await self._send(batch)
        except UNAVAILABLE as exc:
            logger.warning("group commit of %d %s failed: %r", len(batch), self._what, exc)
            replies = [exc] * len(batch)
        except Exception as exc:  # a bug: fail this batch, keep serving the next ones
            logger.exception("group commit of %d %s failed", len(batch), self._what)
            replies = [exc] * len(batch)
        self._write_seconds.observe(time.perf_counter() - start)
        for call, reply in zip(batch, replies, strict=True):
            _settle(call.future, reply)

    async def _send(self, batch: list[_Call]) -> list[Any]:
        """One pipeline of EVALSHAs; on NOSCRIPT, load the script and resend those."""
        replies = await self._pipeline(batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self._client.script_load(self.script.source)
            resent = await self._pipeline([batch[i] for i in missing])
            for i, reply in zip(missing, resent, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        """The replies of `batch`, a script error as the reply of its call."""
        return await self._evalsha_all([(call.keys, call.args) for call in batch])

    async def _evalsha_all(self, commands: list[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """One EVALSHA of the script per (keys, args), in one round trip; an
        error reply as the reply of its command."""
        sha = self.script.sha
        if len(commands) == 1:  # a pipeline of one costs more than the command itself
            keys, args = commands[0]
            try:
                return [await self._client.evalsha(sha, len(keys), *keys, *args)]
            except ResponseError as exc:
                return [exc]
        pipe = self._client.pipeline(transaction=False)
        for keys, args in commands:
            # execute_command: redis-py refuses ClusterPipeline.evalsha
            pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))


class MergedGroupCommit(GroupCommit):
    """A `GroupCommit` whose calls are merged into script calls (see the module
    docstring): at most `calls_per_script` calls per script call, their first
    key shared; `header()` gives the arguments that come first."""

    def __init__(
        self,
        client: AsyncRedis,
        script: LuaScript,
        *,
        header: Callable[[], tuple[bytes | str, ...]],
        calls_per_script: int,
        max_batch: int = DEFAULT_MAX_BATCH,
        what: str = "script calls",
    ) -> None:
        super().__init__(client, script, max_batch=max_batch, what=what)
        self._header = header
        self._calls_per_script = calls_per_script

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        by_first_key: dict[str, list[int]] = {}
        for i, call in enumerate(batch):
            by_first_key.setdefault(call.keys[0], []).append(i)
        header = self._header()
        chunks: list[list[int]] = []
        commands: list[tuple[Sequence[str], Sequence[Any]]] = []
        for first_key, indexes in by_first_key.items():
            for start in range(0, len(indexes), self._calls_per_script):
                chunk = indexes[start : start + self._calls_per_script]
                keys = [first_key]
                args: list[bytes | str] = [*header]
                for i in chunk:
                    keys += batch[i].keys[1:]
                    args += batch[i].args
                chunks.append(chunk)
                commands.append((keys, args))
        replies: list[Any] = [None] * len(batch)
        for chunk, reply in zip(chunks, await self._evalsha_all(commands), strict=True):
            if isinstance(reply, BaseException):
                for i in chunk:
                    replies[i] = reply
            else:
                for i, call_reply in zip(chunk, reply, strict=True):
                    replies[i] = call_reply
        return replies


class GroupCommitLog:
    """The base of the Redis logs: a bytes client, the group commit of the log's
    write script, the key layout and the stream trimming options.

    `client` is closed by `aclose` only when the log made it (`from_url`).
    `stream_maxlen` caps each stream shard approximately (`MAXLEN ~`, None:
    never) and `stream_minid_age_s` drops entries older than that many seconds
    approximately (`MINID ~`, None: never). `max_batch` caps the calls of one
    pipeline; `flushes` counts the pipelines sent and `flushed` the calls they
    carried; `what` names the calls in log lines.
    """

    def __init__(
        self,
        client: AsyncRedis,
        keys: KeyLayout | None,
        script: LuaScript,
        *,
        stream_maxlen: int | None,
        stream_minid_age_s: int | None,
        max_batch: int,
        ping_timeout_s: float,
        owns_client: bool,
        what: str,
    ) -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError(f"{type(self).__name__} needs a client with decode_responses=False")
        check_positive("stream_maxlen", stream_maxlen)
        check_positive("stream_minid_age_s", stream_minid_age_s)
        self.keys = keys or KeyLayout()
        self._client = client
        self._owns_client = owns_client
        self._maxlen = str(stream_maxlen or 0)
        self._minid_age_ms = (stream_minid_age_s or 0) * 1000
        self._ping_timeout_s = ping_timeout_s
        self._commit = self._group_commit(client, script, max_batch, what)

    def _group_commit(
        self, client: AsyncRedis, script: LuaScript, max_batch: int, what: str
    ) -> GroupCommit:
        """The group commit of the log's write script (each call one script call)."""
        return GroupCommit(client, script, max_batch=max_batch, what=what)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout_s: float = 2.0,
        connect_timeout_s: float = 1.0,
        **options: Any,
    ) -> Self:
        """A log with its own client for `url` (`redis://host:port/db`, `unix://path`,
        `redis+cluster://host:port`): bounded socket timeouts and one quick
        reconnect, so a Redis that is away fails calls within about the timeouts
        instead of hanging. `options` are the constructor's keyword arguments."""
        client = bounded_client(url, socket_timeout_s, connect_timeout_s)
        return cls(client, owns_client=True, **options)

    @property
    def flushes(self) -> int:
        return self._commit.flushes

    @property
    def flushed(self) -> int:
        return self._commit.flushed

    async def ping(self) -> bool:
        """Whether Redis answers PING within `ping_timeout_s`; never raises."""
        return await ping(self._client, self._ping_timeout_s)

    async def aclose(self) -> None:
        """Refuse new calls, wait for the queued ones, close an owned client."""
        await self._commit.aclose()
        if self._owns_client:
            await self._client.aclose()


def _settle(future: asyncio.Future[Any], reply: Any) -> None:
    if future.done():  # the caller was cancelled
        return
    if isinstance(reply, BaseException):
        future.set_exception(reply)
    else:
        future.set_result(reply)


def bounded_client(url: str, socket_timeout_s: float, connect_timeout_s: float) -> AsyncRedis:
    """A bytes client for `url` (standalone, or a cluster for `redis+cluster://`)
    with bounded timeouts and one quick reconnect."""
    return async_client(url, socket_timeout_s=socket_timeout_s, connect_timeout_s=connect_timeout_s)


async def ping(client: AsyncRedis, timeout_s: float) -> bool:
    """Whether `client` answers PING within `timeout_s`; never raises."""
    try:
        async with asyncio.timeout(timeout_s):
            return bool(await client.ping())
    except UNAVAILABLE as exc:  # TimeoutError is an OSError
        count_redis_error("ping", exc)
        return False


def count_redis_error(operation: str, exc: BaseException) -> None:
    """Count a failed Redis operation (`voxroute_redis_errors_total`); `operation`
    is one of a fixed set named by the callers."""
    _REDIS_ERRORS.get(operation, redis_error_kind(exc)).inc()


def redis_error_kind(exc: BaseException) -> str:
    """`timeout`, `connection` (refused, reset, closed, DNS), `response` (an error
    reply: a script error, OOM, READONLY, a wrong type) or `other`."""
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "timeout"
    if isinstance(exc, ResponseError):
        return "response"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection"
    return "other"


def minid_now(age_ms: int) -> str:
    """The MINID that keeps the entries of the last `age_ms` milliseconds."""
    return f"{time.time_ns() // 1_000_000 - age_ms}-0"


def check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
