"""Fixtures for the event log and spool tests, on the real Redis and key prefix of
tests/conftest.py (`redis_url`, `prefix`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from experiments.eventlog import KeyLayout, RedisSessionLog
from experiments.events import Assignment, AssignmentEvent

EventFactory = Callable[..., AssignmentEvent]


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, socket_timeout=5) as conn:
        yield conn


@pytest.fixture
async def async_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def log(async_redis: aioredis.Redis, prefix: str) -> AsyncIterator[RedisSessionLog]:
    session_log = RedisSessionLog(async_redis, KeyLayout(prefix=prefix), session_ttl_s=3600)
    yield session_log
    await session_log.aclose()


def make_event(
    session_id: str, event_id: str | None = None, ts_ms: int = 1_750_000_000_000
) -> AssignmentEvent:
    return AssignmentEvent(
        event_id=event_id or uuid.uuid4().hex,
        session_id=session_id,
        tenant_id="acme",
        region="eu-west",
        ts_ms=ts_ms,
        assignments=(
            Assignment(
                "stt-provider", "2", "deepgram", "deepgram-nova-3", "SPLIT", None,
                "session", session_id, "stt-1", (("deepgram", 50), ("whisper", 50)),
            ),
        ),
    )  # fmt: skip


@pytest.fixture
def event() -> EventFactory:
    """`event(session_id, event_id=None)`: an assignment event for that session."""
    return make_event
