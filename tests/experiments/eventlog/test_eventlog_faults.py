"""RedisSessionLog when Redis is away, silent, restarted or has lost its scripts."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from experiments.errors import StorageUnavailableError
from experiments.eventlog import RedisSessionLog
from experiments.events import AssignmentEvent
from service.embedded_redis import EmbeddedRedis

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
EventFactory = Callable[..., AssignmentEvent]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers; its port."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_closed_port_fails_fast_with_storage_unavailable(event: EventFactory) -> None:
    log = RedisSessionLog.from_url(
        f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.5, socket_timeout_s=0.5
    )
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError) as caught:
        await log.create_session("s-1", b"d", event("s-1"))
    assert time.monotonic() - started < 2
    assert caught.value.context == {
        "session_id": "s-1",
        "operation": "create_session",
        "redis_error": "ConnectionError",
    }
    with pytest.raises(StorageUnavailableError):
        await log.get_session("s-1")
    assert not await log.ping()
    await log.aclose()


async def test_a_silent_server_times_out_instead_of_hanging(
    silent_server: int, event: EventFactory
) -> None:
    log = RedisSessionLog.from_url(
        f"redis://127.0.0.1:{silent_server}/0", connect_timeout_s=0.3, socket_timeout_s=0.3
    )
    started = time.monotonic()
    results = await asyncio.gather(
        *(log.create_session(f"s-{i}", b"d", event(f"s-{i}")) for i in range(20)),
        return_exceptions=True,
    )
    assert time.monotonic() - started < 3
    assert all(isinstance(result, StorageUnavailableError) for result in results)
    assert log.flushes == 1
    await log.aclose()


async def test_a_flushed_script_cache_is_reloaded(
    embedded: EmbeddedRedis, event: EventFactory
) -> None:
    log = RedisSessionLog.from_url(embedded.url)
    assert (await log.create_session("s-1", b"d", event("s-1"))).created
    with redis.Redis.from_url(embedded.url) as conn:
        conn.script_flush()
    results = await asyncio.gather(
        *(log.create_session(f"s-{i}", b"d", event(f"s-{i}")) for i in range(2, 12))
    )
    assert all(result.created for result in results)
    assert log.flushes == 2
    await log.aclose()


async def test_the_log_recovers_when_redis_comes_back(tmp_path: Path, event: EventFactory) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path, port=port).start()
    log = RedisSessionLog.from_url(server.url, connect_timeout_s=0.5, socket_timeout_s=0.5)
    try:
        await log.create_session("s-1", b"first", event("s-1"))
        server.stop()
        with pytest.raises(StorageUnavailableError):
            await log.create_session("s-2", b"d", event("s-2"))
        server.start()
        assert (await log.create_session("s-3", b"d", event("s-3"))).created
        assert await log.get_session("s-1") == b"first"  # kept by the append-only file
    finally:
        await log.aclose()
        server.stop()


async def test_ping_is_bounded_even_with_a_patient_client(silent_server: int) -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{silent_server}/0", socket_timeout=30)
    log = RedisSessionLog(client, ping_timeout_s=0.2)
    started = time.monotonic()
    assert not await log.ping()
    assert time.monotonic() - started < 1
    await log.aclose()
    await client.aclose()
