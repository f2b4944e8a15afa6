"""DiskSpool on real files (round trip, group fsync, torn tails, rotation, ack,
bounds), then the spooled logs over a Redis that is away, and their replay."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
import redis

from experiments.errors import ErrorCode, StorageUnavailableError
from experiments.eventlog import AppendStatus, CreateResult, KeyLayout, RedisSessionLog
from experiments.eventlog.outcome_log import RedisOutcomeLog
from experiments.events import AssignmentEvent, OutcomeEvent, OutcomeKind
from experiments.spool.disk_spool import (
    DiskSpool,
    SpoolCorruptError,
    SpoolFullError,
    SpoolLockedError,
)
from experiments.spool.replay import SpooledLogs
from experiments.spool.segment_files import MAGIC, encode_frame
from experiments.spool.spooling_logs import SpooledOutcomeLog, SpooledSessionLog, Spooler

EventFactory = Callable[..., AssignmentEvent]


def payloads(count: int, start: int = 0) -> list[tuple[int, bytes]]:
    return [(1 + i % 2, f"record-{i:04d}".encode() * 3) for i in range(start, start + count)]


def segment_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.seg"))


async def read_all(spool: DiskSpool) -> list[tuple[int, int, bytes]]:
    records = await spool.read(1_000_000)
    return [(r.seq, r.kind, r.payload) for r in records]


@pytest.fixture
async def spool(tmp_path: Path) -> AsyncIterator[DiskSpool]:
    opened = DiskSpool.open(tmp_path / "spool")
    yield opened
    await opened.aclose()


async def reopen(spool: DiskSpool, **options: int) -> DiskSpool:
    await spool.aclose()
    return DiskSpool.open(spool.directory, **options)


async def test_records_come_back_in_order_with_kinds_and_sequence_numbers(
    spool: DiskSpool,
) -> None:
    assert await spool.append(payloads(3)) == 0
    assert await spool.append(payloads(2, start=3)) == 3
    assert await read_all(spool) == [
        (i, kind, payload) for i, (kind, payload) in enumerate(payloads(5))
    ]
    assert spool.depth.records == 5


async def test_an_empty_payload_and_every_kind_byte_round_trip(spool: DiskSpool) -> None:
    await spool.append([(0, b""), (255, b"\x00" * 10)])
    assert await read_all(spool) == [(0, 0, b""), (1, 255, b"\x00" * 10)]


async def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    spool = DiskSpool.open(tmp_path, fsync_interval_s=0.005)
    firsts = await asyncio.gather(*(spool.append(payloads(1, start=i)) for i in range(200)))
    assert sorted(firsts) == list(range(200))
    assert spool.fsyncs < 20
    await spool.aclose()


async def test_records_survive_a_reopen(spool: DiskSpool) -> None:
    await spool.append(payloads(4))
    spool = await reopen(spool)
    assert [seq for seq, _, _ in await read_all(spool)] == [0, 1, 2, 3]
    assert await spool.append(payloads(1)) == 4
    await spool.aclose()


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(lambda frame: frame[:5], id="torn-header"),
        pytest.param(lambda frame: frame[:-3], id="torn-body"),
        pytest.param(lambda frame: frame[:-1] + bytes([frame[-1] ^ 1]), id="bad-crc"),
        pytest.param(lambda frame: b"\x00" * 64, id="zero-filled"),
    ],
)
async def test_a_torn_tail_is_cut_on_open(spool: DiskSpool, tail: object) -> None:
    assert callable(tail)
    await spool.append(payloads(3))
    await spool.aclose()
    [segment] = segment_files(spool.directory)
    whole = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(tail(encode_frame(1, b"the write a crash tore")))
    spool = DiskSpool.open(spool.directory)
    assert segment.stat().st_size == whole
    assert len(await read_all(spool)) == 3
    assert await spool.append(payloads(1)) == 3
    assert [seq for seq, _, _ in await read_all(spool)] == [0, 1, 2, 3]
    await spool.aclose()


async def test_a_segment_torn_at_creation_is_removed(spool: DiskSpool) -> None:
    await spool.append(payloads(2))
    await spool.aclose()
    torn = spool.directory / f"{2:020d}.seg"
    torn.write_bytes(MAGIC[:3])
    spool = DiskSpool.open(spool.directory)
    assert not torn.exists()
    assert await spool.append(payloads(1)) == 2
    await spool.aclose()


async def test_damage_inside_a_complete_segment_refuses_to_open(tmp_path: Path) -> None:
    spool = DiskSpool.open(tmp_path, segment_bytes=100)
    for start in range(0, 6, 2):
        await spool.append(payloads(2, start=start))
    await spool.aclose()
    first = segment_files(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[-2] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(SpoolCorruptError, match=first.name):
        DiskSpool.open(tmp_path)


async def test_segments_rotate_and_are_deleted_once_acknowledged(tmp_path: Path) -> None:
    spool = DiskSpool.open(tmp_path, segment_bytes=50)  # two records (84 bytes) fill one
    for start in range(0, 10, 2):
        await spool.append(payloads(2, start=start))
    assert len(segment_files(tmp_path)) == 5
    records = await spool.read(5)
    await spool.ack(records[-1].end)
    assert len(segment_files(tmp_path)) == 3  # records 0-3 gone; 4 shares a segment with 5
    assert spool.depth.records == 5
    rest = await spool.read(100)
    assert [r.seq for r in rest] == [5, 6, 7, 8, 9]
    await spool.ack(rest[-1].end)
    assert segment_files(tmp_path) == []
    assert spool.depth.records == 0
    assert spool.depth.bytes == 0
    assert await spool.append(payloads(1)) == 10
    assert [r.seq for r in await spool.read(10)] == [10]
    await spool.aclose()


async def test_a_reopened_spool_resumes_after_the_last_ack(spool: DiskSpool) -> None:
    await spool.append(payloads(10))
    records = await spool.read(4)
    await spool.ack(records[-1].end)
    spool = await reopen(spool)
    assert spool.acked.seq == 4
    assert [seq for seq, _, _ in await read_all(spool)] == [4, 5, 6, 7, 8, 9]
    assert spool.depth.records == 6
    await spool.aclose()


async def test_a_reopened_rotated_spool_resumes_in_a_later_segment(tmp_path: Path) -> None:
    spool = DiskSpool.open(tmp_path, segment_bytes=100)
    for start in range(0, 10, 2):
        await spool.append(payloads(2, start=start))
    records = await spool.read(7)
    await spool.ack(records[-1].end)
    spool = await reopen(spool, segment_bytes=100)
    assert [seq for seq, _, _ in await read_all(spool)] == [7, 8, 9]
    await spool.aclose()


async def test_a_damaged_ack_file_replays_everything(spool: DiskSpool) -> None:
    await spool.append(payloads(3))
    await spool.ack((await spool.read(2))[-1].end)
    await spool.aclose()
    (spool.directory / "ack").write_bytes(b"\x00" * 12)
    spool = DiskSpool.open(spool.directory)
    assert [seq for seq, _, _ in await read_all(spool)] == [0, 1, 2]
    await spool.aclose()


async def test_reading_from_a_cursor(spool: DiskSpool) -> None:
    await spool.append(payloads(5))
    first = await spool.read(2)
    assert [r.seq for r in await spool.read(2, after=first[-1].end)] == [2, 3]


@pytest.mark.parametrize(
    ("max_records", "max_bytes"), [(3, 1 << 20), (1000, 4096)], ids=["records", "bytes"]
)
async def test_a_full_spool_raises_spool_full_and_writes_nothing(
    tmp_path: Path, max_records: int, max_bytes: int
) -> None:
    spool = DiskSpool.open(tmp_path, max_records=max_records, max_bytes=max_bytes)
    big = [(1, b"x" * 1500)]
    while True:
        try:
            await spool.append(big)
        except SpoolFullError as exc:
            caught = exc
            break
    sizes = [path.stat().st_size for path in segment_files(tmp_path)]
    depth = spool.depth
    assert caught.code is ErrorCode.SPOOL_FULL
    assert caught.context["max_records"] == max_records
    assert [path.stat().st_size for path in segment_files(tmp_path)] == sizes
    assert spool.depth == depth
    await spool.ack((await spool.read(100))[-1].end)
    await spool.append(big)  # room again once replayed
    await spool.aclose()


async def test_a_batch_is_all_or_nothing(tmp_path: Path) -> None:
    spool = DiskSpool.open(tmp_path, max_records=5)
    await spool.append(payloads(3))
    with pytest.raises(SpoolFullError):
        await spool.append(payloads(3))
    assert spool.depth.records == 3
    await spool.aclose()


async def test_a_second_process_cannot_open_a_held_folder(spool: DiskSpool) -> None:
    with pytest.raises(SpoolLockedError):
        DiskSpool.open(spool.directory)


async def test_open_slot_takes_the_first_free_worker_folder(tmp_path: Path) -> None:
    first = DiskSpool.open_slot(tmp_path)
    second = DiskSpool.open_slot(tmp_path)
    assert (first.directory.name, second.directory.name) == ("w0", "w1")
    await first.aclose()
    await second.aclose()


async def test_a_closed_spool_refuses_records(spool: DiskSpool) -> None:
    await spool.aclose()
    with pytest.raises(StorageUnavailableError, match="closed"):
        spool.submit(payloads(1))


def test_spool_files_are_private_to_the_user(tmp_path: Path) -> None:
    async def write() -> None:
        spool = DiskSpool.open(tmp_path)
        await spool.append(payloads(1))
        await spool.aclose()

    asyncio.run(write())
    assert all(os.stat(path).st_mode & 0o077 == 0 for path in segment_files(tmp_path))


# --- the spooled logs and their replay (real Redis under a test prefix) ------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def outcome(session_id: str, turn: int, event_id: str | None = None) -> OutcomeEvent:
    return OutcomeEvent(
        event_id=event_id or f"{session_id}-t{turn}",
        session_id=session_id,
        tenant_id="acme",
        ts_ms=1_750_000_000_000 + turn,
        kind=OutcomeKind.TURN,
        turn=turn,
        metrics=(("e2e_latency_ms", 900.0 + turn),),
    )


def redis_logs(url: str, prefix: str) -> tuple[RedisSessionLog, RedisOutcomeLog]:
    keys = KeyLayout(prefix=prefix)
    timeouts = {"socket_timeout_s": 0.2, "connect_timeout_s": 0.2}
    return (
        RedisSessionLog.from_url(url, keys=keys, **timeouts),
        RedisOutcomeLog.from_url(url, keys=keys, **timeouts),
    )


async def open_logs(folder: Path, url: str, prefix: str, **spool_options: int) -> SpooledLogs:
    sessions, outcomes = redis_logs(url, prefix)
    spool = DiskSpool.open(folder, **spool_options)
    return await SpooledLogs.open(spool, sessions, outcomes, min_backoff_s=0.01, max_backoff_s=0.05)


@pytest.fixture
async def away(tmp_path: Path, prefix: str) -> AsyncIterator[SpooledLogs]:
    """Spooled logs over a Redis that does not answer (a closed port)."""
    logs = await open_logs(tmp_path / "spool", f"redis://127.0.0.1:{free_port()}/0", prefix)
    yield logs
    await logs.aclose()


async def drained(logs: SpooledLogs, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while logs.spooler.spool.depth.records or not logs.spooler.redis_up:
            await asyncio.sleep(0.01)


def stream(conn: redis.Redis, key: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in conn.xrange(key)]


async def test_a_session_created_while_redis_is_away_is_answered_from_the_spool(
    away: SpooledLogs, event: EventFactory
) -> None:
    first = event("s-1")
    result = await away.sessions.create_session("s-1", b'{"doc":1}', first)
    assert result == CreateResult(b'{"doc":1}', created=True, stream_id=None)
    assert away.spooler.spool.depth.records == 1
    assert await away.sessions.get_session("s-1") == b'{"doc":1}'
    again = await away.sessions.create_session("s-1", b'{"doc":2}', event("s-1"))
    assert again == CreateResult(b'{"doc":1}', created=False, stream_id=None)
    retried = await away.sessions.create_session("s-1", b'{"doc":1}', first)
    assert retried.created
    assert away.spooler.spool.depth.records == 1


async def test_outcomes_for_a_spooled_session_are_spooled(
    away: SpooledLogs, event: EventFactory
) -> None:
    await away.sessions.create_session("s-1", b"{}", event("s-1"))
    assert await away.outcomes.session_tenants(["s-1"]) == {"s-1": "acme"}
    results = await away.outcomes.append_outcomes([outcome("s-1", 0), outcome("s-1", 1)])
    assert [r.status for r in results] == [AppendStatus.SPOOLED, AppendStatus.SPOOLED]
    assert away.spooler.spool.depth.records == 3


async def test_sessions_it_cannot_place_are_unavailable_while_redis_is_away(
    away: SpooledLogs,
) -> None:
    with pytest.raises(StorageUnavailableError, match="s-9"):
        await away.outcomes.session_tenants(["s-9"])
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError, match="s-9"):
        await away.sessions.get_session("s-9")  # Redis is known to be away: no timeout
    assert time.monotonic() - started < 0.1


async def test_a_full_spool_answers_spool_full_and_keeps_nothing(
    tmp_path: Path, prefix: str, event: EventFactory
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    logs = await open_logs(tmp_path, url, prefix, max_records=1)
    await logs.sessions.create_session("s-1", b"{}", event("s-1"))
    with pytest.raises(SpoolFullError) as caught:
        await logs.sessions.create_session("s-2", b"{}", event("s-2"))
    assert caught.value.code is ErrorCode.SPOOL_FULL
    with pytest.raises(StorageUnavailableError):
        await logs.sessions.get_session("s-2")
    assert logs.spooler.spool.depth.records == 1
    await logs.aclose()


async def test_writes_go_straight_to_redis_when_it_answers(
    tmp_path: Path, redis_url: str, prefix: str, event: EventFactory
) -> None:
    logs = await open_logs(tmp_path, redis_url, prefix)
    created = await logs.sessions.create_session("s-1", b"{}", event("s-1"))
    [appended] = await logs.outcomes.append_outcomes([outcome("s-1", 0)])
    assert created.stream_id is not None
    assert appended.status is AppendStatus.APPENDED
    assert logs.spooler.spool.depth.records == 0
    await logs.aclose()


async def test_the_spool_is_replayed_after_a_restart_once_and_in_order(
    away: SpooledLogs, redis_url: str, prefix: str, event: EventFactory, sync_redis: redis.Redis
) -> None:
    events = [event(f"s-{i}") for i in range(3)]
    for i, assignment in enumerate(events):
        await away.sessions.create_session(f"s-{i}", b"{}", assignment)
        for turn in range(3):
            await away.outcomes.append_outcomes([outcome(f"s-{i}", turn)])
    await away.outcomes.append_outcomes([outcome("s-0", 2)])  # a client's retry
    folder = away.spooler.spool.directory
    await away.aclose()

    logs = await open_logs(folder, redis_url, prefix)  # voxroute restarts, Redis is back
    await drained(logs)
    keys = KeyLayout(prefix=prefix)
    assert [f[b"event_id"].decode() for f in stream(sync_redis, keys.assignment_stream(0))] == [
        e.event_id for e in events
    ]
    outcomes = [f[b"event_id"].decode() for f in stream(sync_redis, keys.outcome_stream(0))]
    assert outcomes == [f"s-{i}-t{turn}" for i in range(3) for turn in range(3)]
    assert (logs.spooler.stats.replayed_sessions, logs.spooler.stats.duplicates) == (3, 1)
    assert sorted(folder.glob("*.seg")) == []
    await logs.aclose()


async def test_a_record_redis_refuses_for_good_is_set_aside(
    away: SpooledLogs, redis_url: str, prefix: str, event: EventFactory
) -> None:
    await away.sessions.create_session("s-1", b'{"spooled":true}', event("s-1"))
    await away.outcomes.append_outcomes([outcome("s-404", 0)])
    folder = away.spooler.spool.directory
    await away.aclose()
    direct, _ = redis_logs(redis_url, prefix)
    await direct.create_session("s-1", b'{"first":true}', event("s-1"))  # another process
    await direct.aclose()

    logs = await open_logs(folder, redis_url, prefix)
    await drained(logs)
    rejected = [
        orjson.loads(line) for line in (folder / "rejected.jsonl").read_bytes().splitlines()
    ]
    assert [(r["seq"], r["kind"]) for r in rejected] == [(0, 1), (1, 2)]
    assert "created by another event" in rejected[0]["reason"]
    assert "unknown_session" in rejected[1]["reason"]
    assert logs.spooler.stats.rejected == 2
    await logs.aclose()


async def test_outcomes_of_a_session_still_in_the_spool_wait_their_turn(
    tmp_path: Path, redis_url: str, prefix: str, event: EventFactory
) -> None:
    sessions, outcomes = redis_logs(redis_url, prefix)
    spooler = Spooler(DiskSpool.open(tmp_path))  # no replayer: the spool stays as it is
    spooled = SpooledOutcomeLog(outcomes, spooler)
    await SpooledSessionLog(sessions, spooler).create_session("s-0", b"{}", event("s-0"))
    spooler.redis_up = False
    await spooled.append_outcomes([outcome("s-0", 0)])
    spooler.redis_up = True
    [waiting] = await spooled.append_outcomes([outcome("s-0", 1)])
    [direct] = await spooled.append_outcomes([outcome("s-2", 0)])
    assert waiting.status is AppendStatus.SPOOLED
    assert direct.status is AppendStatus.UNKNOWN_SESSION  # went to Redis at once
    await spooler.spool.aclose()
    await sessions.aclose()
    await outcomes.aclose()


def test_a_session_record_spooled_before_the_context_field_still_decodes() -> None:
    from experiments.spool.spooling_logs import _pack, decode_session

    event = AssignmentEvent("e1", "s1", "acme", "eu", 1, (), {"s2s": True}, {})
    old_values = event.encode_values()[:-1]  # written by a version without `context`
    document, decoded = decode_session(_pack((b"doc", *old_values)))
    assert (document, decoded.session_id, decoded.features) == (b"doc", "s1", {})
