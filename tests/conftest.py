"""Shared fixtures: a real Redis (VOXROUTE_TEST_REDIS_URL, default the local one)
under a key prefix of the test's own, deleted afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("VOXROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
