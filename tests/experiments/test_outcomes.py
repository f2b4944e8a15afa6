"""OutcomeService on a real Redis: every validation rule names the field and
writes nothing; all-or-nothing and per-event batches; retries stored once."""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from experiments.errors import ErrorCode
from experiments.eventlog import KeyLayout, RedisOutcomeLog, RedisSessionLog
from experiments.events import Assignment, AssignmentEvent, OutcomeEvent, OutcomeKind
from experiments.metrics import load_default_registry, parse_metric_registry
from experiments.outcomes import (
    MAX_EVENTS_PER_REQUEST,
    BatchMode,
    OutcomeRejectedError,
    OutcomeReport,
    OutcomeService,
    OutcomeStatus,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
GOOD = {"e2e_latency_ms": 905.0, "mos": 4.2, "interruptions": 2, "task_success": True}


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    yield connection
    await connection.aclose()


@pytest.fixture
def sync_redis(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
async def service(client: aioredis.Redis, prefix: str) -> AsyncIterator[OutcomeService]:
    keys = KeyLayout(prefix=prefix, shards=2)
    sessions = RedisSessionLog(client, keys)
    for session_id, tenant in (("call-1", "acme"), ("call-2", "acme"), ("call-g", "globex")):
        event = AssignmentEvent(uuid.uuid4().hex, session_id, tenant, "eu", 1, (
            Assignment("voice-mode", "1", "pipeline", "pipeline", "STATIC",
                       None, None, None, None, None),
        ))  # fmt: skip
        await sessions.create_session(session_id, b"{}", event)
    await sessions.aclose()
    outcome_log = RedisOutcomeLog(client, keys)
    yield OutcomeService(outcome_log, load_default_registry())
    await outcome_log.aclose()


def report(session_id: str = "call-1", **changes: Any) -> OutcomeReport:
    fields: dict[str, Any] = {"session_id": session_id, "metrics": dict(GOOD), "turn": 3}
    fields.update(changes)
    return OutcomeReport(**fields)


def stored(conn: redis.Redis, prefix: str) -> list[OutcomeEvent]:
    keys = KeyLayout(prefix=prefix, shards=2)
    entries = [e for stream in keys.outcome_streams() for e in conn.xrange(stream)]
    return [OutcomeEvent.decode(fields) for _, fields in entries]


def written_keys(conn: redis.Redis, prefix: str) -> set[bytes]:
    """Every key but the sessions (and their assignments) made by the fixture."""
    made = (b":session:", b":assignments")
    return {k for k in conn.scan_iter(match=f"{prefix}:*") if not any(m in k for m in made)}


@pytest.fixture
def written(sync_redis: redis.Redis, prefix: str) -> Callable[[], set[bytes]]:
    """`written()`: the outcome keys (streams, dedupe sets) that exist now."""
    return lambda: written_keys(sync_redis, prefix)


async def rejected(service: OutcomeService, *reports: OutcomeReport) -> OutcomeRejectedError:
    with pytest.raises(OutcomeRejectedError) as caught:
        await service.record_batch(list(reports))
    return caught.value


INVALID = [
    ({"metrics": {"moss": 4.0}}, "metrics.moss", "unknown metric 'moss' (did you mean 'mos'?)"),
    ({"metrics": {"zzz": 1}}, "metrics.zzz", "unknown metric 'zzz'; known: cost_usd, csat"),
    ({"metrics": {"mos": math.nan}}, "metrics.mos", "must be a finite number, got nan"),
    ({"metrics": {"e2e_latency_ms": math.inf}}, "metrics.e2e_latency_ms", "finite number, got inf"),
    ({"metrics": {"mos": 7.0}}, "metrics.mos", "7.0 is outside [1, 5]"),
    ({"metrics": {"llm_ttft_ms": -3.0}}, "metrics.llm_ttft_ms", "-3.0 is outside [0, 600000]"),
    ({"metrics": {"mos": "4"}}, "metrics.mos", "must be a number, got a string"),
    ({"metrics": {"e2e_latency_ms": True}}, "metrics.e2e_latency_ms", "got the boolean true"),
    ({"metrics": {"interruptions": 1.5}}, "metrics.interruptions", "must be an integer, got 1.5"),
    ({"metrics": {"task_success": 0.5}}, "metrics.task_success", "true, false, 0 or 1, got 0.5"),
    ({"metrics": {}}, "metrics", "must name at least one metric"),
    ({"metrics": [1, 2]}, "metrics", "must be an object of metric names to values, got an array"),
    ({"event_id": ""}, "event_id", "must not be empty"),
    ({"event_id": "e\x00"}, "event_id", "must not contain control characters"),
    ({"event_id": "x" * 129}, "event_id", "must be at most 128 characters, got 129"),
    ({"event_id": " e"}, "event_id", "must not start or end with whitespace"),
    ({"event_id": 7}, "event_id", "must be a string, got int"),
    ({"session_id": ""}, "session_id", "must not be empty"),
    ({"turn": -1}, "turn", "must be an integer from 0 to 2147483647, got -1"),
    ({"turn": 1.5}, "turn", "got 1.5"),
    ({"turn": "3"}, "turn", "got '3'"),
    ({"turn": True}, "turn", "got True"),
    ({"kind": OutcomeKind.END}, "turn", "an event of kind 'end' has no turn"),
]


@pytest.mark.parametrize(("changes", "field", "problem"), INVALID)
async def test_an_invalid_event_is_named_and_nothing_is_written(
    service: OutcomeService, written: Callable[[], set[bytes]],
    changes: dict[str, Any], field: str, problem: str,
) -> None:  # fmt: skip
    error = await rejected(service, report(), report(**changes), report("call-2"))
    assert error.code is ErrorCode.INVALID_INPUT
    assert error.message.startswith(f"events[1].{field}: ")
    assert problem in error.message
    [detail] = error.context["errors"]
    assert (detail["index"], detail["field"]) == (1, f"events[1].{field}")
    assert written() == set()


@pytest.mark.parametrize(("changes", "field", "problem"), INVALID[:6])
async def test_a_single_event_names_the_field_without_an_index(
    service: OutcomeService, written: Callable[[], set[bytes]],
    changes: dict[str, Any], field: str, problem: str,
) -> None:  # fmt: skip
    with pytest.raises(OutcomeRejectedError, match=re.escape(f"{field}: ")) as caught:
        await service.record(report(**changes))
    assert caught.value.message.startswith(f"{field}: ")
    assert written() == set()


async def test_an_unknown_session_is_not_found_and_nothing_is_written(
    service: OutcomeService, written: Callable[[], set[bytes]]
) -> None:
    error = await rejected(service, report(), report("call-404"))
    assert error.code is ErrorCode.SESSION_NOT_FOUND
    assert (
        error.message == "events[1].session_id: session 'call-404' not found (unknown, or expired)"
    )
    assert written() == set()


async def test_another_tenants_session_is_a_conflict_and_nothing_is_written(
    service: OutcomeService, written: Callable[[], set[bytes]]
) -> None:
    with pytest.raises(OutcomeRejectedError) as caught:
        await service.record_batch([report(), report("call-g")], tenant_id="acme")
    assert caught.value.code is ErrorCode.CONFLICT
    assert caught.value.message == (
        "events[1].session_id: session 'call-g' belongs to another tenant than 'acme'"
    )
    assert written() == set()


async def test_without_a_tenant_any_session_takes_outcomes(service: OutcomeService) -> None:
    results = await service.record_batch([report(), report("call-g")])
    assert [r.status for r in results] == [OutcomeStatus.APPENDED] * 2


async def test_too_many_metrics_in_one_event(
    client: aioredis.Redis, prefix: str, written: Callable[[], set[bytes]]
) -> None:
    entry = {"type": "count", "unit": "x", "direction": "lower", "rollup": "sum"}
    registry = parse_metric_registry({f"m{i}": entry for i in range(70)}, source="<test>")
    service = OutcomeService(RedisOutcomeLog(client, KeyLayout(prefix=prefix)), registry)
    error = await rejected(service, report(metrics={f"m{i}": 1 for i in range(65)}))
    assert error.message == "events[0].metrics: at most 64 metrics per event, got 65"
    assert written() == set()


async def test_too_many_events_in_one_request(
    service: OutcomeService, written: Callable[[], set[bytes]]
) -> None:
    error = await rejected(service, *[report() for _ in range(MAX_EVENTS_PER_REQUEST + 1)])
    assert error.message == "events: at most 1000 events per request, got 1001"
    assert written() == set()


async def test_an_empty_batch_is_refused(service: OutcomeService) -> None:
    error = await rejected(service)
    assert error.message == "events: must hold at least one event"


async def test_every_problem_of_a_batch_is_listed(service: OutcomeService) -> None:
    bad = [report(metrics={"mos": 9.0, "wer": -1.0}) for _ in range(4)]
    error = await rejected(service, *bad)
    assert len(error.context["errors"]) == 8
    assert error.message.endswith("; and 3 more")
    assert error.message.startswith("events[0].metrics.mos: 9.0 is outside [1, 5]; ")


async def test_validation_problems_come_before_session_lookups(
    service: OutcomeService,
) -> None:
    error = await rejected(service, report("call-404"), report(metrics={"mos": 0}))
    assert error.code is ErrorCode.INVALID_INPUT
    assert [e["index"] for e in error.context["errors"]] == [1]


async def test_a_valid_batch_is_appended_with_the_sessions_tenant(
    service: OutcomeService, sync_redis: redis.Redis, prefix: str
) -> None:
    results = await service.record_batch([report(event_id="e-1"), report("call-g", turn=None)])
    assert [r.status for r in results] == [OutcomeStatus.APPENDED] * 2
    assert all(r.stream_id for r in results)
    events = {e.event_id: e for e in stored(sync_redis, prefix)}
    first = events["e-1"]
    assert (first.tenant_id, first.kind, first.turn) == ("acme", OutcomeKind.TURN, 3)
    assert dict(first.metrics) == {
        "e2e_latency_ms": 905.0, "mos": 4.2, "interruptions": 2.0, "task_success": 1.0,
    }  # fmt: skip
    second = events[results[1].event_id or ""]
    assert (second.tenant_id, second.kind, second.turn) == ("globex", OutcomeKind.SESSION, None)
    assert re.fullmatch(r"[0-9a-f]{32}", second.event_id)


async def test_per_event_mode_writes_the_valid_events_and_reports_the_others(
    service: OutcomeService, sync_redis: redis.Redis, prefix: str
) -> None:
    results = await service.record_batch(
        [
            report(event_id="ok-1"),
            report(metrics={"mos": 7.0}, event_id="bad-value"),
            report("call-404", event_id="no-session"),
            report("call-g", event_id="other-tenant"),
            report("call-2", event_id="ok-2"),
        ],
        mode=BatchMode.PER_EVENT,
        tenant_id="acme",
    )
    assert [r.status for r in results] == [
        OutcomeStatus.APPENDED, OutcomeStatus.REJECTED, OutcomeStatus.REJECTED,
        OutcomeStatus.REJECTED, OutcomeStatus.APPENDED,
    ]  # fmt: skip
    assert [r.event_id for r in results] == [
        "ok-1",
        "bad-value",
        "no-session",
        "other-tenant",
        "ok-2",
    ]
    codes = [[e.code for e in r.errors] for r in results]
    assert codes == [
        [], [ErrorCode.INVALID_INPUT], [ErrorCode.SESSION_NOT_FOUND], [ErrorCode.CONFLICT], [],
    ]  # fmt: skip
    assert results[1].errors[0].message == "events[1].metrics.mos: 7.0 is outside [1, 5]"
    assert sorted(e.event_id for e in stored(sync_redis, prefix)) == ["ok-1", "ok-2"]


async def test_the_same_request_three_times_is_stored_once(
    service: OutcomeService, sync_redis: redis.Redis, prefix: str
) -> None:
    batch = [report(event_id=f"e-{i}", turn=i) for i in range(10)]
    rounds = [await service.record_batch(batch) for _ in range(3)]
    assert {r.status for r in rounds[0]} == {OutcomeStatus.APPENDED}
    assert {r.status for later in rounds[1:] for r in later} == {OutcomeStatus.DUPLICATE}
    assert sorted(e.event_id for e in stored(sync_redis, prefix)) == sorted(
        f"e-{i}" for i in range(10)
    )


async def test_concurrent_retries_are_stored_once(
    service: OutcomeService, sync_redis: redis.Redis, prefix: str
) -> None:
    batch = [report(event_id=f"e-{i}", turn=i) for i in range(10)]
    rounds = await asyncio.gather(*(service.record_batch(batch) for _ in range(8)))
    for i in range(10):
        statuses = [results[i].status for results in rounds]
        assert statuses.count(OutcomeStatus.APPENDED) == 1
    assert len(stored(sync_redis, prefix)) == 10


async def test_an_end_event_defaults_to_one_per_session(
    service: OutcomeService, sync_redis: redis.Redis, prefix: str
) -> None:
    end = OutcomeReport("call-1", {"duration_s": 184.2, "cost_usd": 0.031}, kind=OutcomeKind.END)
    first = await service.record(end)
    again = await service.record(end)
    assert (first.event_id, first.status) == ("end", OutcomeStatus.APPENDED)
    assert again.status is OutcomeStatus.DUPLICATE
    bare = await service.record(OutcomeReport("call-2", {}, kind=OutcomeKind.END))
    assert bare.status is OutcomeStatus.APPENDED
    kinds = {e.kind for e in stored(sync_redis, prefix)}
    assert kinds == {OutcomeKind.END}


async def test_a_single_event_for_an_unknown_session_raises_not_found(
    service: OutcomeService,
) -> None:
    with pytest.raises(OutcomeRejectedError, match=r"^session_id: session 'x' not found") as caught:
        await service.record(report("x"))
    assert caught.value.code is ErrorCode.SESSION_NOT_FOUND
