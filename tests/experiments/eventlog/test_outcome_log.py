"""RedisOutcomeLog on a real Redis: exactly once per (session, event id), unknown
sessions refused, tenants read back, retention, reading the outcomes back."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from experiments.errors import ErrorCode, ExperimentError, StorageUnavailableError
from experiments.eventlog import (
    AppendResult,
    AppendStatus,
    KeyLayout,
    OutcomeLog,
    RedisOutcomeLog,
    RedisSessionLog,
    StreamReader,
    advance_position,
)
from experiments.eventlog.stream_ids import parse_stream_id
from experiments.events import AssignmentEvent, OutcomeEvent, OutcomeKind

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
EventFactory = Callable[..., AssignmentEvent]


def outcome(
    session_id: str, event_id: str | None = None, turn: int | None = 1, mos: float = 4.0
) -> OutcomeEvent:
    return OutcomeEvent(
        event_id=event_id or uuid.uuid4().hex,
        session_id=session_id,
        tenant_id="acme",
        ts_ms=1_750_000_000_000,
        kind=OutcomeKind.TURN if turn is not None else OutcomeKind.SESSION,
        turn=turn,
        metrics=(("e2e_latency_ms", 905.0), ("mos", mos)),
    )


@pytest.fixture
async def outcomes(async_redis: aioredis.Redis, prefix: str) -> AsyncIterator[RedisOutcomeLog]:
    outcome_log = RedisOutcomeLog(async_redis, KeyLayout(prefix=prefix))
    yield outcome_log
    await outcome_log.aclose()


async def create(log: RedisSessionLog, event: EventFactory, *session_ids: str) -> None:
    await asyncio.gather(*(log.create_session(s, b"{}", event(s)) for s in session_ids))


def entries(conn: redis.Redis, keys: KeyLayout) -> list[OutcomeEvent]:
    found = [entry for stream in keys.outcome_streams() for entry in conn.xrange(stream)]
    return [OutcomeEvent.decode(fields) for _, fields in found]


async def test_it_is_an_outcome_log(outcomes: RedisOutcomeLog) -> None:
    assert isinstance(outcomes, OutcomeLog)
    assert await outcomes.ping()


async def test_an_event_of_a_known_session_is_appended_as_encoded(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    await create(log, event, "s-1")
    sent = outcome("s-1")
    [result] = await outcomes.append_outcomes([sent])
    assert result.status is AppendStatus.APPENDED
    [(stream_id, fields)] = sync_redis.xrange(outcomes.keys.outcome_stream_of("s-1"))
    assert stream_id.decode() == result.stream_id
    assert OutcomeEvent.decode(fields) == sent
    assert sync_redis.smembers(outcomes.keys.seen_key("s-1")) == {sent.event_id.encode()}


async def test_an_unknown_session_is_refused_and_nothing_is_written(
    outcomes: RedisOutcomeLog, sync_redis: redis.Redis, prefix: str
) -> None:
    assert await outcomes.append_outcomes([outcome("s-nobody")]) == [
        AppendResult(AppendStatus.UNKNOWN_SESSION)
    ]
    assert list(sync_redis.scan_iter(match=f"{prefix}:*")) == []


async def test_a_retried_event_is_stored_once(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    await create(log, event, "s-1")
    sent = outcome("s-1")
    results = [(await outcomes.append_outcomes([sent]))[0] for _ in range(3)]
    assert [r.status for r in results] == [AppendStatus.APPENDED] + [AppendStatus.DUPLICATE] * 2
    assert entries(sync_redis, outcomes.keys) == [sent]


async def test_concurrent_retries_are_stored_once(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    await create(log, event, "s-1")
    sent = outcome("s-1")
    results = await asyncio.gather(*(outcomes.append_outcomes([sent]) for _ in range(50)))
    statuses = [result.status for [result] in results]
    assert statuses.count(AppendStatus.APPENDED) == 1
    assert statuses.count(AppendStatus.DUPLICATE) == 49
    assert entries(sync_redis, outcomes.keys) == [sent]


async def test_a_repeat_inside_one_call_is_a_duplicate(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory
) -> None:
    await create(log, event, "s-1")
    sent = outcome("s-1")
    results = await outcomes.append_outcomes([sent, outcome("s-1"), sent])
    assert [r.status for r in results] == [
        AppendStatus.APPENDED, AppendStatus.APPENDED, AppendStatus.DUPLICATE,
    ]  # fmt: skip


async def test_event_ids_are_deduplicated_per_session(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory
) -> None:
    await create(log, event, "s-1", "s-2")
    results = await outcomes.append_outcomes([outcome("s-1", "e-1"), outcome("s-2", "e-1")])
    assert [r.status for r in results] == [AppendStatus.APPENDED] * 2


async def test_the_dedupe_set_expires_with_the_session(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    await create(log, event, "s-1")
    await outcomes.append_outcomes([outcome("s-1"), outcome("s-1")])
    session_ttl = sync_redis.pttl(outcomes.keys.session_key("s-1"))
    seen_ttl = sync_redis.pttl(outcomes.keys.seen_key("s-1"))
    # The set takes the session's PTTL inside the script; the PEXPIRE that follows
    # may run in the next millisecond, so it can outlive the session by 1 ms.
    assert 3_500_000 < seen_ttl <= session_ttl + 1 <= 3_600_001
    assert session_ttl - seen_ttl < 1000


async def test_concurrent_appends_share_pipelines(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    sessions = [f"s-{i}" for i in range(50)]
    await create(log, event, *sessions)
    sent = [[outcome(s, turn=t) for t in range(10)] for s in sessions]
    results = await asyncio.gather(*(outcomes.append_outcomes(batch) for batch in sent))
    assert all(r.status is AppendStatus.APPENDED for batch in results for r in batch)
    assert outcomes.flushed == 50  # one shard: each call's 10 events are one script call
    assert outcomes.flushes < 50
    stored = entries(sync_redis, outcomes.keys)
    assert sorted(e.event_id for e in stored) == sorted(e.event_id for b in sent for e in b)


async def test_one_call_is_split_by_shard_and_keeps_each_shards_order(
    log: RedisSessionLog, async_redis: aioredis.Redis, prefix: str, event: EventFactory,
    sync_redis: redis.Redis,
) -> None:  # fmt: skip
    keys = KeyLayout(prefix=prefix, shards=4)
    sessions = RedisSessionLog(async_redis, keys)
    outcome_log = RedisOutcomeLog(async_redis, keys)
    session_ids = [f"s-{i}" for i in range(20)]
    await create(sessions, event, *session_ids)
    sent = [outcome(s, turn=t) for t in range(30) for s in session_ids]  # 600 events
    sent.insert(7, outcome("s-nobody"))
    sent.append(sent[3])
    results = await outcome_log.append_outcomes(sent)
    assert [r.status for r in results] == (
        [AppendStatus.APPENDED] * 7 + [AppendStatus.UNKNOWN_SESSION]
        + [AppendStatus.APPENDED] * 593 + [AppendStatus.DUPLICATE]
    )  # fmt: skip
    per_shard = Counter(keys.shard_of(e.session_id) for e in sent)
    assert outcome_log.flushed == sum(-(-n // 100) for n in per_shard.values())  # <= 100 each
    for shard, stream in enumerate(keys.outcome_streams()):
        stored = [OutcomeEvent.decode(fields) for _, fields in sync_redis.xrange(stream)]
        mine = [e for e in sent[:-1] if keys.shard_of(e.session_id) == shard]
        assert stored == [e for e in mine if e.session_id != "s-nobody"]
        ids = [r.stream_id for e, r in zip(sent[:-1], results[:-1], strict=True) if e in stored]
        assert ids == [stream_id.decode() for stream_id, _ in sync_redis.xrange(stream)]
    await sessions.aclose()
    await outcome_log.aclose()


async def test_a_flushed_script_cache_is_reloaded(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory, sync_redis: redis.Redis
) -> None:
    await create(log, event, "s-1")
    assert (await outcomes.append_outcomes([outcome("s-1")]))[0].status is AppendStatus.APPENDED
    assert await outcomes.session_tenants(["s-1"]) == {"s-1": "acme"}
    sync_redis.script_flush()
    [result] = await outcomes.append_outcomes([outcome("s-1")])
    assert result.status is AppendStatus.APPENDED
    assert await outcomes.session_tenants(["s-1"]) == {"s-1": "acme"}


async def test_session_tenants_reads_the_tenant_of_each_session(
    log: RedisSessionLog, outcomes: RedisOutcomeLog, event: EventFactory
) -> None:
    await create(log, event, "s-1", "s-2")
    assert await outcomes.session_tenants(["s-1", "s-unknown", "s-2", "s-1"]) == {
        "s-1": "acme",
        "s-unknown": None,
        "s-2": "acme",
    }


async def test_no_sessions_no_round_trip(outcomes: RedisOutcomeLog) -> None:
    assert await outcomes.session_tenants([]) == {}
    assert await outcomes.append_outcomes([]) == []


async def test_a_session_stored_before_the_tenant_field_is_read_from_its_document(
    outcomes: RedisOutcomeLog, sync_redis: redis.Redis
) -> None:
    document = orjson.dumps({"session_id": "s-old", "tenant_id": "globex"})
    sync_redis.hset(outcomes.keys.session_key("s-old"), mapping={"doc": document})
    assert await outcomes.session_tenants(["s-old"]) == {"s-old": "globex"}


async def test_bad_ids_are_refused_before_any_io(outcomes: RedisOutcomeLog) -> None:
    with pytest.raises(ExperimentError, match="event_id: must not contain control") as caught:
        await outcomes.append_outcomes([outcome("s-1"), outcome("s-2", event_id="e\n")])
    assert caught.value.code is ErrorCode.INVALID_INPUT
    with pytest.raises(ExperimentError, match="session_id"):
        await outcomes.session_tenants(["ok", "bad\n"])
    assert outcomes.flushes == 0


async def test_a_redis_that_is_away_raises_storage_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    away = RedisOutcomeLog.from_url(
        f"redis://127.0.0.1:{port}/0", connect_timeout_s=0.3, socket_timeout_s=0.3
    )
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError) as caught:
        await away.append_outcomes([outcome("s-1"), outcome("s-2")])
    assert caught.value.context["operation"] == "append_outcomes"
    with pytest.raises(StorageUnavailableError):
        await away.session_tenants(["s-1"])
    assert not await away.ping()
    assert time.monotonic() - started < 3
    await away.aclose()


async def test_a_closed_log_refuses_appends(async_redis: aioredis.Redis, prefix: str) -> None:
    closed = RedisOutcomeLog(async_redis, KeyLayout(prefix=prefix))
    await closed.aclose()
    with pytest.raises(StorageUnavailableError, match="closed"):
        await closed.append_outcomes([outcome("s-1")])


async def test_maxlen_trims_the_outcome_stream(
    log: RedisSessionLog, async_redis: aioredis.Redis, prefix: str, event: EventFactory,
    sync_redis: redis.Redis,
) -> None:  # fmt: skip
    trimmed = RedisOutcomeLog(async_redis, KeyLayout(prefix=prefix), stream_maxlen=10)
    await create(log, event, "s-1")
    await trimmed.append_outcomes([outcome("s-1", turn=t) for t in range(1000)])
    assert 10 <= sync_redis.xlen(trimmed.keys.outcome_stream_of("s-1")) < 1000
    await trimmed.aclose()


async def test_minid_drops_old_entries_of_both_streams(
    async_redis: aioredis.Redis, prefix: str, event: EventFactory, sync_redis: redis.Redis
) -> None:
    keys = KeyLayout(prefix=prefix)
    sessions = RedisSessionLog(async_redis, keys, stream_minid_age_s=1)
    outcome_log = RedisOutcomeLog(async_redis, keys, stream_minid_age_s=1)
    await create(sessions, event, *(f"old-{i}" for i in range(1000)))
    await outcome_log.append_outcomes([outcome("old-1", turn=t) for t in range(1000)])
    await asyncio.sleep(1.2)
    await create(sessions, event, "new")
    await outcome_log.append_outcomes([outcome("new")])
    # approximate: whole stream nodes (100 entries by default) go
    assert sync_redis.xlen(keys.assignment_stream(0)) <= 101
    assert sync_redis.xlen(keys.outcome_stream(0)) <= 101
    await sessions.aclose()
    await outcome_log.aclose()


async def test_read_outcomes_returns_everything_once_in_order(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix, shards=4)
    sessions = RedisSessionLog(async_redis, keys)
    outcome_log = RedisOutcomeLog(async_redis, keys)
    session_ids = [f"s-{i}" for i in range(40)]
    await create(sessions, event, *session_ids)
    sent = [outcome(s, turn=t) for t in range(3) for s in session_ids]
    for _ in range(2):  # a retry of everything adds nothing
        await asyncio.gather(*(outcome_log.append_outcomes(sent[i::6]) for i in range(6)))
    reader = StreamReader(sync_redis, keys=keys)
    batches = list(reader.read_outcomes(batch=50))
    assert [len(b) for b in batches] == [50, 50, 20]
    read = [entry for batch in batches for entry in batch]
    ids = [parse_stream_id(stream_id) for stream_id, _ in read]
    assert ids == sorted(ids)
    assert sorted(e.event_id for _, e in read) == sorted(e.event_id for e in sent)
    position = advance_position("0-0", read, keys)
    assert list(reader.read_outcomes(since=position)) == []
    await outcome_log.append_outcomes([outcome("s-7", turn=9)])
    [[(_, later)]] = list(reader.read_outcomes(since=position))
    assert (later.session_id, later.turn) == ("s-7", 9)
    await sessions.aclose()
    await outcome_log.aclose()
