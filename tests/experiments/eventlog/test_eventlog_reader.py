"""StreamReader: every shard read back in batches, merged in stream-id order."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pytest
import redis
import redis.asyncio as aioredis

from experiments.eventlog import (
    EventReader,
    KeyLayout,
    RedisSessionLog,
    StreamReader,
    advance_position,
)
from experiments.eventlog.stream_ids import parse_stream_id
from experiments.events import AssignmentEvent

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
EventFactory = Callable[..., AssignmentEvent]


async def write(
    client: aioredis.Redis, keys: KeyLayout, event: EventFactory, count: int, first: int = 0
) -> list[str]:
    log = RedisSessionLog(client, keys)
    ids = range(first, first + count)
    results = await asyncio.gather(
        *(log.create_session(f"s-{i}", b"d", event(f"s-{i}", ts_ms=i)) for i in ids)
    )
    return [result.stream_id or "" for result in results]


def ordered(stream_ids: list[str]) -> bool:
    keys = [parse_stream_id(stream_id) for stream_id in stream_ids]
    return keys == sorted(keys)


async def test_the_reader_reads_back_everything_in_batches(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix)
    written = await write(async_redis, keys, event, 1200)
    reader = StreamReader(sync_redis, keys=keys)
    assert isinstance(reader, EventReader)
    batches = list(reader.read_assignments(batch=500))
    assert [len(batch) for batch in batches] == [500, 500, 200]
    read = [entry for batch in batches for entry in batch]
    assert [stream_id for stream_id, _ in read] == sorted(written, key=parse_stream_id)
    assert {e.session_id for _, e in read} == {f"s-{i}" for i in range(1200)}
    assert read[0][1] == event(read[0][1].session_id, read[0][1].event_id, read[0][1].ts_ms)


async def test_shards_spread_entries_and_the_reader_merges_them_in_id_order(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix, shards=4)
    for round_ in range(5):  # several rounds so the shards' ids interleave
        await write(async_redis, keys, event, 100, first=100 * round_)
    lengths = [sync_redis.xlen(stream) for stream in keys.assignment_streams()]
    assert sum(lengths) == 500
    assert all(length > 0 for length in lengths)
    read = [e for b in StreamReader(sync_redis, keys=keys).read_assignments(batch=64) for e in b]
    assert len(read) == 500
    assert ordered([stream_id for stream_id, _ in read])
    assert {e.session_id for _, e in read} == {f"s-{i}" for i in range(500)}


async def test_reading_resumes_after_a_position(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix, shards=3)
    await write(async_redis, keys, event, 90)
    reader = StreamReader(sync_redis, keys=keys)
    first = [entry for batch in reader.read_assignments(batch=40) for entry in batch]
    position = advance_position("0-0", first, keys)
    assert list(reader.read_assignments(since=position)) == []
    await write(async_redis, keys, event, 30, first=90)
    later = [entry for batch in reader.read_assignments(since=position) for entry in batch]
    assert {e.session_id for _, e in later} == {f"s-{i}" for i in range(90, 120)}


async def test_a_single_since_id_is_exclusive(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix)
    written = sorted(await write(async_redis, keys, event, 10), key=parse_stream_id)
    read = next(StreamReader(sync_redis, keys=keys).read_assignments(since=written[4]))
    assert [stream_id for stream_id, _ in read] == written[5:]


def test_an_empty_log_yields_no_batches(sync_redis: redis.Redis, prefix: str) -> None:
    reader = StreamReader(sync_redis, keys=KeyLayout(prefix=prefix, shards=2))
    assert list(reader.read_assignments()) == []


@pytest.mark.parametrize(
    ("since", "batch", "message"),
    [("0-0", 0, "batch"), ("zero", 10, "stream id"), ({5: "0-0"}, 10, "outside")],
)
def test_bad_arguments_are_refused_before_reading(
    sync_redis: redis.Redis, since: str, batch: int, message: str
) -> None:
    reader = StreamReader(sync_redis, keys=KeyLayout(shards=2))
    with pytest.raises(ValueError, match=message):
        reader.read_assignments(since=since, batch=batch)


def test_from_url_owns_and_closes_its_client(redis_url: str, prefix: str) -> None:
    with StreamReader.from_url(redis_url, keys=KeyLayout(prefix=prefix)) as reader:
        assert list(reader.read_assignments()) == []


async def test_the_gc_runs_between_batches_and_after_reading(
    async_redis: aioredis.Redis, sync_redis: redis.Redis, prefix: str, event: EventFactory
) -> None:
    keys = KeyLayout(prefix=prefix, shards=2)
    await write(async_redis, keys, event, 30)
    states = [gc.isenabled() for _ in StreamReader(sync_redis, keys=keys).read_assignments(batch=7)]
    assert states == [True] * 5
    assert gc.isenabled()
