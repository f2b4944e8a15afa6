"""The event log's metrics: Redis errors by operation and kind, the spool's depth,
spooled and replayed records (real spool files, a real Redis under a test prefix)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_samples import sample
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis_process import free_port

from experiments.eventlog import KeyLayout, RedisSessionLog
from experiments.eventlog.group_commit import ping, redis_error_kind
from experiments.eventlog.outcome_log import RedisOutcomeLog
from experiments.events import AssignmentEvent
from experiments.spool.disk_spool import DiskSpool
from experiments.spool.replay import SpooledLogs

pytestmark = [pytest.mark.redis, pytest.mark.timeout(30)]
EventFactory = Callable[..., AssignmentEvent]
DEPTH = "voxroute_spool_depth"
TIMEOUTS = {"socket_timeout_s": 0.2, "connect_timeout_s": 0.2}


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), "timeout"),
        (RedisTimeoutError("read"), "timeout"),
        (RedisConnectionError("refused"), "connection"),
        (ConnectionRefusedError(), "connection"),
        (ResponseError("OOM command not allowed"), "response"),
        (ValueError("a bug"), "other"),
    ],
)
def test_redis_errors_fall_into_a_few_kinds(error: BaseException, kind: str) -> None:
    assert redis_error_kind(error) == kind


def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


async def test_a_failed_ping_is_a_redis_error() -> None:
    labels = {"operation": "ping", "kind": "connection"}
    before = sample("voxroute_redis_errors_total", **labels)
    client = aioredis.Redis.from_url(closed_port_url(), socket_connect_timeout=0.2)
    assert not await ping(client, 1.0)
    await client.aclose()
    assert sample("voxroute_redis_errors_total", **labels) == before + 1


async def test_a_session_redis_cannot_take_is_a_redis_error_of_create_session(
    prefix: str, event: EventFactory
) -> None:
    labels = {"operation": "create_session", "kind": "connection"}
    before = sample("voxroute_redis_errors_total", **labels)
    log = RedisSessionLog.from_url(closed_port_url(), keys=KeyLayout(prefix=prefix), **TIMEOUTS)
    with pytest.raises(Exception, match="Redis is unavailable"):
        await log.create_session("s-1", b"{}", event("s-1"))
    await log.aclose()
    assert sample("voxroute_redis_errors_total", **labels) == before + 1


async def test_the_depth_gauge_follows_queued_committed_and_acknowledged_records(
    tmp_path: Path,
) -> None:
    before = sample(DEPTH)
    spool = DiskSpool.open(tmp_path / "spool")
    written = spool.submit([(1, b"a"), (2, b"b"), (2, b"c")])
    assert sample(DEPTH) == before + 3  # queued records count already
    await written
    records = await spool.read(10)
    await spool.ack(records[1].end)
    assert sample(DEPTH) == before + 1
    await spool.aclose()
    assert sample(DEPTH) == before  # the records left wait for the next process


async def test_a_reopened_spool_counts_the_records_it_holds(tmp_path: Path) -> None:
    spool = DiskSpool.open(tmp_path / "spool")
    await spool.append([(1, b"a"), (1, b"b")])
    await spool.aclose()
    before = sample(DEPTH)
    reopened = DiskSpool.open(tmp_path / "spool")
    assert sample(DEPTH) == before + 2
    await reopened.aclose()


async def open_logs(folder: Path, url: str, prefix: str) -> SpooledLogs:
    keys = KeyLayout(prefix=prefix)
    return await SpooledLogs.open(
        DiskSpool.open(folder),
        RedisSessionLog.from_url(url, keys=keys, **TIMEOUTS),
        RedisOutcomeLog.from_url(url, keys=keys, **TIMEOUTS),
        min_backoff_s=0.01,
        max_backoff_s=0.05,
    )


@pytest.fixture
async def away(tmp_path: Path, prefix: str) -> AsyncIterator[SpooledLogs]:
    """Spooled logs over a Redis that does not answer (a closed port)."""
    logs = await open_logs(tmp_path / "spool", closed_port_url(), prefix)
    yield logs
    await logs.aclose()


async def test_sessions_spooled_while_redis_is_away_are_counted(
    away: SpooledLogs, event: EventFactory
) -> None:
    before = sample("voxroute_spooled_records_total", record="session")
    await away.sessions.create_session("s-1", b"{}", event("s-1"))
    await away.sessions.create_session("s-2", b"{}", event("s-2"))
    assert sample("voxroute_spooled_records_total", record="session") == before + 2


async def test_replayed_records_are_counted_once_redis_answers(
    away: SpooledLogs, redis_url: str, prefix: str, event: EventFactory
) -> None:
    await away.sessions.create_session("s-1", b"{}", event("s-1"))
    folder = away.spooler.spool.directory
    await away.aclose()
    labels = {"record": "session", "result": "appended"}
    before = sample("voxroute_spool_replayed_records_total", **labels)

    logs = await open_logs(folder, redis_url, prefix)  # restarted, and Redis is back
    async with asyncio.timeout(5):
        while sample("voxroute_spool_replayed_records_total", **labels) < before + 1:
            await asyncio.sleep(0.01)
    await logs.aclose()
    assert sample("voxroute_spool_replayed_records_total", **labels) == before + 1
