"""Redis killed with SIGKILL in the middle of a load: nothing accepted is lost.

A real redis-server (AOF, fsync always) and a real voxroute under uvicorn;
several concurrent clients create sessions and report outcomes; Redis is
killed mid-run and restarted on its data; once the spool has drained, every
created session's assignments and every accepted outcome are in the streams
exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from faults import Accepted, Load, VoxrouteProcess
from redis_process import REDIS_SERVER, RedisProcess, wait_for

from experiments.eventlog import KeyLayout
from experiments.events import AssignmentEvent, OutcomeEvent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server on the PATH"),
]
CLIENTS = 8
SESSIONS = 1600
OUTCOMES_PER_SESSION = 2
PREFIX = "fault"
SHARDS = 1


async def _drive(base_url: str, redis_proc: RedisProcess, acc: Accepted) -> None:
    load = Load(base_url, SESSIONS, CLIENTS, OUTCOMES_PER_SESSION, acc)
    workers = load.start()
    await load.reached(0.3)
    redis_proc.kill()
    await load.reached(0.6)
    await asyncio.to_thread(redis_proc.start)
    await asyncio.gather(*workers)


def _spool_drained(base_url: str) -> bool:
    report = httpx.get(f"{base_url}/readyz", timeout=5).json()
    return bool(report["redis"]["ok"]) and report["spool"]["depth"] == 0


def _stream_events(url: str) -> tuple[list[AssignmentEvent], list[OutcomeEvent]]:
    keys = KeyLayout(prefix=PREFIX, shards=SHARDS)
    assignments: list[AssignmentEvent] = []
    outcomes: list[OutcomeEvent] = []
    with redis.Redis.from_url(url) as conn:
        for shard in range(SHARDS):
            for _, fields in conn.xrange(keys.assignment_stream(shard)):
                assignments.append(AssignmentEvent.decode(fields))
            for _, fields in conn.xrange(keys.outcome_stream(shard)):
                outcomes.append(OutcomeEvent.decode(fields))
    return assignments, outcomes


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[RedisProcess, VoxrouteProcess]]:
    (tmp_path / "redis").mkdir()
    redis_proc = RedisProcess(tmp_path / "redis").start()
    env = {
        "VOXROUTE_REDIS_URL": redis_proc.url,
        "VOXROUTE_KEY_PREFIX": PREFIX,
        "VOXROUTE_DATA_DIR": str(tmp_path / "voxroute"),
        "VOXROUTE_REDIS_TIMEOUT_S": "0.5",
        "VOXROUTE_LOG_LEVEL": "ERROR",
    }
    server = VoxrouteProcess(env).start(tmp_path / "voxroute.log")
    yield redis_proc, server
    server.stop()
    redis_proc.stop()


def test_sigkill_of_redis_mid_load_loses_nothing_and_duplicates_nothing(
    processes: tuple[RedisProcess, VoxrouteProcess],
) -> None:
    redis_proc, server = processes
    accepted = Accepted()
    started = time.monotonic()
    asyncio.run(_drive(server.url, redis_proc, accepted))
    wait_for(lambda: _spool_drained(server.url), "the spool to drain", timeout_s=60)

    assignments, outcomes = _stream_events(redis_proc.url)
    per_session = Counter(event.session_id for event in assignments)
    per_outcome = Counter(event.event_id for event in outcomes)
    assert set(per_session) == accepted.sessions
    assert set(per_session.values()) == {1}
    assert set(per_outcome) == accepted.outcomes
    assert set(per_outcome.values()) == {1}
    assert len(accepted.sessions) == SESSIONS
    assert accepted.outcome_statuses["spooled"] > 0, "the outage was not exercised"
    assert time.monotonic() - started < 200
