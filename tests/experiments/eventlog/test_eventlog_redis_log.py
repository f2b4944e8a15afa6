"""RedisSessionLog against a real Redis: idempotent creation, TTL, group commit."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from experiments.errors import ErrorCode, ExperimentError
from experiments.eventlog import KeyLayout, RedisOutcomeLog, RedisSessionLog, SessionLog
from experiments.events import ASSIGNMENT_FIELDS, AssignmentEvent

pytestmark = [pytest.mark.redis, pytest.mark.timeout(30)]
EventFactory = Callable[..., AssignmentEvent]


def doc(session_id: str) -> bytes:
    return orjson.dumps({"session_id": session_id})


async def test_it_is_a_session_log(log: RedisSessionLog) -> None:
    assert isinstance(log, SessionLog)
    assert await log.ping()


async def test_create_then_get(log: RedisSessionLog, event: EventFactory) -> None:
    result = await log.create_session("s-1", doc("s-1"), event("s-1"))
    assert result.created
    assert result.document == doc("s-1")
    assert result.stream_id is not None
    assert await log.get_session("s-1") == doc("s-1")
    assert await log.get_session("s-unknown") is None


async def test_the_stream_entry_is_the_encoded_event(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    sent = event("s-1")
    result = await log.create_session("s-1", doc("s-1"), sent)
    [(stream_id, fields)] = sync_redis.xrange(log.keys.assignment_stream_of("s-1"))
    assert stream_id.decode() == result.stream_id
    assert fields == {key.encode(): value for key, value in sent.encode().items()}
    assert list(fields) == [name.encode() for name in ASSIGNMENT_FIELDS]  # readers go by position
    assert AssignmentEvent.decode(fields) == sent


async def test_a_second_create_returns_the_stored_document_and_appends_nothing(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    await log.create_session("s-1", b"first", event("s-1"))
    stream = log.keys.assignment_stream_of("s-1")
    before = sync_redis.xlen(stream)
    again = await log.create_session("s-1", b"second", event("s-1"))
    assert (again.document, again.created, again.stream_id) == (b"first", False, None)
    assert sync_redis.xlen(stream) == before == 1
    assert await log.get_session("s-1") == b"first"


async def test_a_retry_of_the_same_event_finds_its_own_write(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    sent = event("s-1")
    first = await log.create_session("s-1", b"doc", sent)
    assert await log.create_session("s-1", b"doc", sent) == first
    assert sync_redis.xlen(log.keys.assignment_stream_of("s-1")) == 1


async def test_the_session_gets_its_ttl(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    await log.create_session("s-1", b"doc", event("s-1"))
    assert 3590 < sync_redis.ttl(log.keys.session_key("s-1")) <= 3600


async def test_no_ttl_means_no_expiry(
    async_redis: aioredis.Redis, prefix: str, event: EventFactory, sync_redis: redis.Redis
) -> None:
    log = RedisSessionLog(async_redis, KeyLayout(prefix=prefix), session_ttl_s=None)
    await log.create_session("s-1", b"doc", event("s-1"))
    assert sync_redis.ttl(log.keys.session_key("s-1")) == -1


async def test_maxlen_trims_the_stream_approximately(
    async_redis: aioredis.Redis, prefix: str, event: EventFactory, sync_redis: redis.Redis
) -> None:
    log = RedisSessionLog(async_redis, KeyLayout(prefix=prefix), stream_maxlen=10)
    await asyncio.gather(
        *(log.create_session(f"s-{i}", b"d", event(f"s-{i}")) for i in range(1000))
    )
    assert 10 <= sync_redis.xlen(log.keys.assignment_streams()[0]) < 1000


async def test_concurrent_creates_share_pipelines(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    calls = 500
    results = await asyncio.gather(
        *(log.create_session(f"s-{i}", doc(f"s-{i}"), event(f"s-{i}")) for i in range(calls))
    )
    assert all(result.created for result in results)
    assert log.flushed == calls
    assert log.flushes < calls / 5
    entries = sync_redis.xrange(log.keys.assignment_streams()[0])
    assert len(entries) == calls
    per_session = Counter(AssignmentEvent.decode(fields).session_id for _, fields in entries)
    assert per_session == Counter(f"s-{i}" for i in range(calls))
    assert sorted(r.stream_id for r in results) == sorted(i.decode() for i, _ in entries)


async def test_a_lone_call_goes_out_at_once(log: RedisSessionLog, event: EventFactory) -> None:
    for i in range(3):
        await asyncio.wait_for(log.create_session(f"s-{i}", b"d", event(f"s-{i}")), timeout=1)
    assert log.flushes == 3


async def test_a_batch_is_capped(
    async_redis: aioredis.Redis, prefix: str, event: EventFactory
) -> None:
    log = RedisSessionLog(async_redis, KeyLayout(prefix=prefix), max_batch=64)
    await asyncio.gather(*(log.create_session(f"s-{i}", b"d", event(f"s-{i}")) for i in range(200)))
    assert log.flushes >= 4


async def test_concurrent_creates_of_one_session_create_it_once(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    results = await asyncio.gather(
        *(log.create_session("s-1", f"doc-{i}".encode(), event("s-1")) for i in range(50))
    )
    [winner] = [result for result in results if result.created]
    assert {result.document for result in results} == {winner.document}
    assert sync_redis.xlen(log.keys.assignment_stream_of("s-1")) == 1


async def test_one_failing_script_fails_only_its_caller(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    sync_redis.set(log.keys.session_key("s-bad"), "not a hash")
    results = await asyncio.gather(
        *(log.create_session(s, b"d", event(s)) for s in ("s-1", "s-bad", "s-2")),
        return_exceptions=True,
    )
    assert isinstance(results[1], ExperimentError)
    assert results[1].code is ErrorCode.STORAGE_UNAVAILABLE
    assert results[1].context["session_id"] == "s-bad"
    assert [r.created for r in (results[0], results[2]) if not isinstance(r, BaseException)] == [
        True,
        True,
    ]


async def test_a_lone_failing_script_fails_its_caller(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    sync_redis.set(log.keys.session_key("s-bad"), "not a hash")
    with pytest.raises(ExperimentError, match="WRONGTYPE") as caught:
        await log.create_session("s-bad", b"d", event("s-bad"))
    assert caught.value.code is ErrorCode.STORAGE_UNAVAILABLE
    assert (await log.create_session("s-1", b"d", event("s-1"))).created


async def test_a_cancelled_caller_does_not_disturb_the_others(
    log: RedisSessionLog, event: EventFactory
) -> None:
    tasks = [
        asyncio.create_task(log.create_session(f"s-{i}", b"d", event(f"s-{i}"))) for i in range(10)
    ]
    await asyncio.sleep(0)
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert all(
        r.created for i, r in enumerate(results) if i != 3 and not isinstance(r, BaseException)
    )


async def test_aclose_waits_for_queued_calls_then_refuses_new_ones(
    async_redis: aioredis.Redis, prefix: str, event: EventFactory
) -> None:
    log = RedisSessionLog(async_redis, KeyLayout(prefix=prefix))
    pending = [
        asyncio.create_task(log.create_session(f"s-{i}", b"d", event(f"s-{i}"))) for i in range(20)
    ]
    await asyncio.sleep(0)
    await log.aclose()
    assert all(task.done() and task.result().created for task in pending)
    with pytest.raises(ExperimentError, match="closed") as caught:
        await log.create_session("s-late", b"d", event("s-late"))
    assert caught.value.code is ErrorCode.STORAGE_UNAVAILABLE


async def test_arguments_are_checked_before_any_io(
    log: RedisSessionLog, event: EventFactory
) -> None:
    with pytest.raises(ExperimentError, match="is for session") as caught:
        await log.create_session("s-1", b"d", event("s-2"))
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert log.flushes == 0


async def test_a_decoding_client_is_refused(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisSessionLog(client)
    finally:
        await client.aclose()


@pytest.mark.parametrize("log_class", [RedisSessionLog, RedisOutcomeLog])
async def test_both_logs_refuse_a_decoding_client_and_bad_options(
    redis_url: str, log_class: type[RedisSessionLog] | type[RedisOutcomeLog]
) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match=f"{log_class.__name__} needs .*decode_responses"):
            log_class(client)
    finally:
        await client.aclose()
    for option in ("stream_maxlen", "stream_minid_age_s", "max_batch"):
        with pytest.raises(ValueError, match=option):
            log_class.from_url(redis_url, **{option: 0})


async def test_from_url_passes_its_options_and_closes_its_own_client(
    redis_url: str, prefix: str, event: EventFactory, sync_redis: redis.Redis
) -> None:
    log = RedisSessionLog.from_url(
        redis_url, keys=KeyLayout(prefix=prefix), session_ttl_s=60, socket_timeout_s=3
    )
    assert await log.ping()
    await log.create_session("s-1", b"doc", event("s-1"))
    assert 50 < sync_redis.ttl(log.keys.session_key("s-1")) <= 60
    pool = log._client.connection_pool
    assert pool.connection_kwargs["socket_timeout"] == 3
    connections = [*pool._available_connections, *pool._in_use_connections]
    assert any(connection.is_connected for connection in connections)
    await log.aclose()
    assert not any(connection.is_connected for connection in connections)


async def test_one_flush_creates_the_sessions_of_each_shard_in_script_calls(
    async_redis: aioredis.Redis, prefix: str, event: EventFactory, sync_redis: redis.Redis
) -> None:
    keys = KeyLayout(prefix=prefix, shards=4)
    log = RedisSessionLog(async_redis, keys, session_ttl_s=3600)
    calls = 300  # more than SESSIONS_PER_SCRIPT in some shards
    sessions = [f"s-{i}" for i in range(calls)]
    results = await asyncio.gather(*(log.create_session(s, doc(s), event(s)) for s in sessions))
    assert all(result.created for result in results)
    assert (log.flushes, log.flushed) == (1, calls)
    for shard in range(keys.shards):
        entries = sync_redis.xrange(keys.assignment_stream(shard))
        mine = [s for s in sessions if keys.shard_of(s) == shard]
        assert [AssignmentEvent.decode(fields).session_id for _, fields in entries] == mine
    for session_id, result in zip(sessions, results, strict=True):
        stored = sync_redis.hgetall(keys.session_key(session_id))
        assert stored[b"doc"] == doc(session_id)
        assert stored[b"stream"].decode() == result.stream_id
        assert stored[b"tenant"] == b"acme"
        assert 3590 < sync_redis.ttl(keys.session_key(session_id)) <= 3600
    again = await asyncio.gather(*(log.create_session(s, b"other", event(s)) for s in sessions))
    assert [(r.document, r.created) for r in again] == [(doc(s), False) for s in sessions]
    assert sum(sync_redis.xlen(stream) for stream in keys.assignment_streams()) == calls
    await log.aclose()


async def test_a_session_that_fails_inside_a_script_call_writes_nothing_for_itself(
    log: RedisSessionLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    sync_redis.set(log.keys.session_key("s-bad"), "not a hash")
    sessions = ("s-1", "s-bad", "s-2", "s-bad", "s-3")
    results = await asyncio.gather(
        *(log.create_session(s, b"d", event(s)) for s in sessions), return_exceptions=True
    )
    assert log.flushes == 1  # all five in one script call
    assert [isinstance(r, ExperimentError) for r in results] == [False, True, False, True, False]
    entries = sync_redis.xrange(log.keys.assignment_stream_of("s-1"))
    assert [AssignmentEvent.decode(f).session_id for _, f in entries] == ["s-1", "s-2", "s-3"]
    assert sync_redis.get(log.keys.session_key("s-bad")) == b"not a hash"
