"""Fixtures for the event log tests: a real Redis under a key prefix of our own."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from experiments.eventlog import KeyLayout, RedisSessionLog
from experiments.events import Assignment, AssignmentEvent

REDIS_URL = os.environ.get("VOXROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

EventFactory = Callable[..., AssignmentEvent]


@pytest.fixture(scope="session")
def redis_url() -> str:
    with redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1) as probe:
        try:
            probe.ping()
        except (redis.RedisError, OSError) as exc:
            pytest.skip(f"no Redis answers at {REDIS_URL} (set VOXROUTE_TEST_REDIS_URL): {exc}")
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test; every key under it is deleted afterwards."""
    value = f"vrtest:{uuid.uuid4().hex}"
    yield value
    with redis.Redis.from_url(redis_url) as conn:
        keys = list(conn.scan_iter(match=f"{value}:*", count=1000))
        if keys:
            conn.delete(*keys)


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
