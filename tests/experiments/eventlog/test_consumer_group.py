"""StreamConsumer on a real Redis: group reads over every shard, acks, and the
recovery of a dead consumer's entries with XAUTOCLAIM."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
import redis
import redis.asyncio as aioredis

from experiments.errors import ExperimentError
from experiments.eventlog import (
    KeyLayout,
    RedisOutcomeLog,
    RedisSessionLog,
    StreamConsumer,
)
from experiments.eventlog.stream_ids import parse_stream_id
from experiments.events import AssignmentEvent, OutcomeEvent, OutcomeKind

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
EventFactory = Callable[..., AssignmentEvent]


def outcome(session_id: str, turn: int) -> OutcomeEvent:
    return OutcomeEvent(
        uuid.uuid4().hex, session_id, "acme", 1_750_000_000_000, OutcomeKind.TURN, turn,
        (("e2e_latency_ms", 900.0 + turn),),
    )  # fmt: skip


async def write(
    client: aioredis.Redis, keys: KeyLayout, event: EventFactory, sessions: int, turns: int
) -> set[str]:
    """Create `sessions` sessions with `turns` outcome events each; the event ids."""
    session_log = RedisSessionLog(client, keys)
    outcome_log = RedisOutcomeLog(client, keys)
    ids = [f"s-{uuid.uuid4().hex[:6]}-{i}" for i in range(sessions)]
    await asyncio.gather(*(session_log.create_session(s, b"{}", event(s)) for s in ids))
    events = [outcome(s, t) for s in ids for t in range(turns)]
    await outcome_log.append_outcomes(events)
    await session_log.aclose()
    await outcome_log.aclose()
    return {e.event_id for e in events}


def consumer(
    conn: redis.Redis, keys: KeyLayout, name: str, min_idle_ms: int = 60_000
) -> StreamConsumer[OutcomeEvent]:
    return StreamConsumer.outcomes(conn, "export", name, keys=keys, min_idle_ms=min_idle_ms)


async def test_a_group_reads_every_shard_once_in_order(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix, shards=4)
    written = await write(async_redis, keys, event, 20, 5)
    worker = consumer(sync_redis, keys, "w-1")
    worker.create_group()
    worker.create_group()  # idempotent
    batch = worker.read(count=1000)
    assert {d.event.event_id for d in batch} == written
    assert len(batch) == len(written)
    order = [parse_stream_id(d.stream_id) for d in batch]
    assert order == sorted(order)
    assert {d.stream for d in batch} == set(keys.outcome_streams())
    assert worker.read(count=1000) == []
    assert worker.pending() == 100
    assert worker.ack(batch) == 100
    assert worker.pending() == 0


async def test_count_applies_per_shard(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix)
    written = await write(async_redis, keys, event, 5, 5)
    worker = consumer(sync_redis, keys, "w-1")
    worker.create_group()
    seen: list[str] = []
    while batch := worker.read(count=7):
        assert len(batch) <= 7
        seen += [d.event.event_id for d in batch]
        worker.ack(batch)
    assert sorted(seen) == sorted(written)


async def test_a_dead_consumers_entries_are_claimed_and_processed_once(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix, shards=3)
    written = await write(async_redis, keys, event, 30, 4)
    dying = consumer(sync_redis, keys, "w-dying", min_idle_ms=100)
    survivor = consumer(sync_redis, keys, "w-survivor", min_idle_ms=100)
    dying.create_group()
    processed: list[str] = []
    first = dying.read(count=30)  # read, never acked: this consumer dies
    first_ids = {d.event.event_id for d in first}
    assert first_ids
    rest = survivor.read(count=1000)
    processed += [d.event.event_id for d in rest]
    survivor.ack(rest)
    assert survivor.claim_stale() == []  # not idle long enough yet
    time.sleep(0.15)
    claimed = survivor.claim_stale(count=1000)
    assert {d.event.event_id for d in claimed} == first_ids
    processed += [d.event.event_id for d in claimed]
    assert survivor.ack(claimed) == len(claimed)
    assert sorted(processed) == sorted(written)  # every event once
    assert survivor.pending() == 0
    assert dying.ack(first) == 0  # too late: already acked by the survivor


async def test_claim_stale_pages_through_many_entries(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix)
    await write(async_redis, keys, event, 10, 30)
    dying = consumer(sync_redis, keys, "w-dying", min_idle_ms=0)
    dying.create_group()
    dying.read(count=1000)
    survivor = consumer(sync_redis, keys, "w-survivor", min_idle_ms=0)
    assert len(survivor.claim_stale(count=120)) == 120
    assert len(survivor.claim_stale(count=1000)) == 300  # all of them are idle for 0 ms


async def test_a_restarted_consumer_reads_its_own_pending_entries(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix, shards=2)
    written = await write(async_redis, keys, event, 5, 2)
    consumer(sync_redis, keys, "w-1").create_group()
    before = consumer(sync_redis, keys, "w-1").read(count=100)
    again = consumer(sync_redis, keys, "w-1").read_own_pending(count=100)
    assert [d.stream_id for d in again] == [d.stream_id for d in before]
    assert {d.event.event_id for d in again} == written


async def test_a_group_from_now_on_skips_the_history(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix)
    await write(async_redis, keys, event, 3, 3)
    worker = consumer(sync_redis, keys, "w-1")
    worker.create_group(start="$")
    assert worker.read() == []
    later = await write(async_redis, keys, event, 1, 2)
    assert {d.event.event_id for d in worker.read()} == later


def test_a_read_waits_at_most_block_ms(sync_redis: redis.Redis, prefix: str) -> None:
    worker = consumer(sync_redis, KeyLayout(prefix=prefix, shards=2), "w-1")
    worker.create_group()  # MKSTREAM: works before anything was written
    started = time.monotonic()
    assert worker.read(block_ms=200) == []
    assert 0.15 < time.monotonic() - started < 2


async def test_entries_trimmed_while_pending_are_acked_and_skipped(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix)
    await write(async_redis, keys, event, 2, 2)
    worker = consumer(sync_redis, keys, "w-1")
    worker.create_group()
    assert len(worker.read()) == 4
    sync_redis.xtrim(keys.outcome_stream(0), maxlen=0)
    assert worker.read_own_pending() == []
    assert worker.pending() == 0


async def test_the_assignment_streams_have_a_consumer_too(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix, shards=2)
    await write(async_redis, keys, event, 6, 0)
    worker = StreamConsumer.assignments(sync_redis, "audit", "w-1", keys=keys)
    worker.create_group()
    batch = worker.read()
    assert len(batch) == 6
    assert all(isinstance(d.event, AssignmentEvent) for d in batch)


@pytest.mark.parametrize(
    ("group", "name", "idle", "message"),
    [("", "w", 0, "group"), ("g", "w\n", 0, "consumer"), ("g", "w", -1, "min_idle_ms")],
)
def test_bad_arguments_are_refused(
    sync_redis: redis.Redis, group: str, name: str, idle: int, message: str
) -> None:
    with pytest.raises((ValueError, ExperimentError), match=message):
        StreamConsumer.outcomes(sync_redis, group, name, keys=KeyLayout(), min_idle_ms=idle)
