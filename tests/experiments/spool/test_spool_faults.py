"""The spooled logs when Redis is killed with SIGKILL under load and restarted
on its data: every accepted session and outcome is in the streams exactly once,
each session's outcomes in the order they were accepted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis_process import REDIS_SERVER, RedisProcess

from experiments.eventlog import KeyLayout, RedisSessionLog
from experiments.eventlog.outcome_log import RedisOutcomeLog
from experiments.eventlog.protocols import AppendResult
from experiments.events import Assignment, AssignmentEvent, OutcomeEvent, OutcomeKind
from experiments.spool.disk_spool import DiskSpool
from experiments.spool.replay import SpooledLogs

pytestmark = [
    pytest.mark.redis,
    pytest.mark.timeout(60),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs a redis-server binary on the PATH"),
]
PREFIX = "spoolfault"
WORKERS = 16
SESSIONS = 600
TURNS = 3


@dataclass
class Accepted:
    """What the logs answered for: assignment event ids, outcome ids in order per session."""

    assignments: set[str] = field(default_factory=set)
    outcomes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    done: int = 0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProcess]:
    (tmp_path / "redis").mkdir()
    started = RedisProcess(tmp_path / "redis").start()
    yield started
    started.stop()


@pytest.fixture
async def logs(server: RedisProcess, tmp_path: Path) -> AsyncIterator[SpooledLogs]:
    keys = KeyLayout(prefix=PREFIX)
    timeouts = {"socket_timeout_s": 0.3, "connect_timeout_s": 0.3}
    opened = await SpooledLogs.open(
        DiskSpool.open(tmp_path / "spool"),
        RedisSessionLog.from_url(server.url, keys=keys, **timeouts),
        RedisOutcomeLog.from_url(server.url, keys=keys, **timeouts),
        min_backoff_s=0.02,
        max_backoff_s=0.2,
    )
    yield opened
    await opened.aclose()


def assignment(session_id: str) -> AssignmentEvent:
    return AssignmentEvent(
        f"{session_id}-a", session_id, f"t{int(session_id[2:]) % 5}", "eu", 1_750_000_000_000,
        (Assignment("stt", "1", "a", "a", "STATIC", None, None, None, None, None),),
    )  # fmt: skip


async def one_session(logs: SpooledLogs, index: int, accepted: Accepted) -> None:
    session_id = f"s-{index:04d}"
    event = assignment(session_id)
    result = await logs.sessions.create_session(session_id, b"{}", event)
    assert result.created
    accepted.assignments.add(event.event_id)
    tenants = await logs.outcomes.session_tenants([session_id])
    for turn in range(TURNS):
        outcome = OutcomeEvent(
            f"{session_id}-o{turn}", session_id, str(tenants[session_id]), 1_750_000_000_001,
            OutcomeKind.TURN, turn, (("e2e_latency_ms", 800.0 + turn),),
        )  # fmt: skip
        [appended] = await logs.outcomes.append_outcomes([outcome])
        accepted.statuses[appended.status.value] += 1
        accepted.outcomes[session_id].append(outcome.event_id)
    accepted.done += 1


async def worker(logs: SpooledLogs, indices: range, accepted: Accepted) -> None:
    for index in indices:
        await one_session(logs, index, accepted)


async def wait_until(check: object, what: str, timeout_s: float = 20) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def recorded(url: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Assignment event ids, and (session, outcome event id) in stream order."""
    keys = KeyLayout(prefix=PREFIX)
    with redis.Redis.from_url(url) as conn:
        assignments = [f[b"event_id"].decode() for _, f in conn.xrange(keys.assignment_stream(0))]
        outcomes = [
            (f[b"session_id"].decode(), f[b"event_id"].decode())
            for _, f in conn.xrange(keys.outcome_stream(0))
        ]
    return assignments, outcomes


async def test_sigkill_of_redis_under_load_loses_and_duplicates_nothing(
    server: RedisProcess, logs: SpooledLogs
) -> None:
    accepted = Accepted()
    workers = [
        asyncio.create_task(worker(logs, range(w, SESSIONS, WORKERS), accepted))
        for w in range(WORKERS)
    ]
    await wait_until(lambda: accepted.done >= SESSIONS * 0.3, "the first third")
    server.kill()
    await wait_until(lambda: accepted.done >= SESSIONS * 0.6, "the second third, spooled")
    await asyncio.to_thread(server.start)
    await asyncio.gather(*workers)
    await wait_until(
        lambda: logs.spooler.redis_up and logs.spooler.spool.depth.records == 0, "the drain"
    )

    assignments, outcomes = recorded(server.url)
    assert Counter(assignments) == Counter(accepted.assignments)
    per_session: dict[str, list[str]] = defaultdict(list)
    for session_id, event_id in outcomes:
        per_session[session_id].append(event_id)
    assert per_session == accepted.outcomes  # exactly once, and in order per session
    assert accepted.statuses["spooled"] > 0, "the outage was not exercised"
    assert accepted.statuses["appended"] > 0
    stats = logs.spooler.stats
    assert stats.rejected == 0
    assert stats.spooled_sessions > 0
    assert not list(logs.spooler.spool.directory.glob("*.seg"))


class GoesAwayOnce:
    """The Redis outcome log, except that Redis is killed (SIGKILL) just before
    the first call after `armed` is set: the replayer meets an outage in the
    middle of a batch, after it replayed the batch's sessions."""

    def __init__(self, inner: RedisOutcomeLog, server: RedisProcess) -> None:
        self.inner = inner
        self.server = server
        self.armed = False
        self.fired = False

    async def append_outcomes(self, events: Sequence[OutcomeEvent]) -> list[AppendResult]:
        if self.armed:
            self.armed = False
            await asyncio.to_thread(self.server.kill)
            self.fired = True
        return await self.inner.append_outcomes(events)

    async def session_tenants(self, session_ids: Sequence[str]) -> dict[str, str | None]:
        return await self.inner.session_tenants(session_ids)

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_outage_in_the_middle_of_a_replay_counts_each_record_once(
    server: RedisProcess, tmp_path: Path
) -> None:
    keys = KeyLayout(prefix=PREFIX)
    timeouts = {"socket_timeout_s": 0.3, "connect_timeout_s": 0.3}
    outcomes = GoesAwayOnce(RedisOutcomeLog.from_url(server.url, keys=keys, **timeouts), server)
    logs = await SpooledLogs.open(
        DiskSpool.open(tmp_path / "spool"),
        RedisSessionLog.from_url(server.url, keys=keys, **timeouts),
        outcomes,
        min_backoff_s=0.02,
        max_backoff_s=0.2,
    )
    sessions = 20
    accepted = Accepted()
    try:
        server.kill()
        await worker(logs, range(sessions), accepted)  # all spooled: Redis is away
        outcomes.armed = True
        await asyncio.to_thread(server.start)
        await wait_until(lambda: outcomes.fired and not logs.spooler.redis_up, "the second outage")
        await asyncio.to_thread(server.start)
        await wait_until(
            lambda: logs.spooler.redis_up and logs.spooler.spool.depth.records == 0, "the drain"
        )
        report = logs.report()
    finally:
        await logs.aclose()

    assert accepted.statuses == {"spooled": sessions * TURNS}
    counts = {name: report[name] for name in ("spooled_sessions", "spooled_outcomes",
              "replayed_sessions", "replayed_outcomes", "duplicates", "rejected")}  # fmt: skip
    assert counts == {
        "spooled_sessions": sessions,
        "spooled_outcomes": sessions * TURNS,
        "replayed_sessions": sessions,
        "replayed_outcomes": sessions * TURNS,
        "duplicates": 0,
        "rejected": 0,
    }
    assignments, stored = recorded(server.url)
    assert (len(assignments), len(stored)) == (sessions, sessions * TURNS)
