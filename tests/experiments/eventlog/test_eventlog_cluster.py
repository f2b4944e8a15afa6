"""RedisSessionLog and StreamReader on a local three-node Redis Cluster."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.asyncio import RedisCluster
from redis.cluster import RedisCluster as SyncRedisCluster
from redis_cluster import local_cluster

from experiments.eventlog import KeyLayout, RedisSessionLog, StreamReader
from experiments.eventlog.session_log import CREATE_SESSION_SHA
from experiments.events import AssignmentEvent

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not (shutil.which("redis-server") and shutil.which("redis-cli")),
        reason="needs redis-server and redis-cli on the PATH",
    ),
]
EventFactory = Callable[..., AssignmentEvent]


@pytest.fixture(scope="module")
def cluster_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Three primaries, no replicas; the port of the first."""
    with local_cluster(tmp_path_factory.mktemp("cluster")) as ports:
        yield ports[0]


async def test_sessions_and_streams_work_on_a_cluster(
    cluster_port: int, event: EventFactory
) -> None:
    keys = KeyLayout(prefix="vrtest", shards=8)
    client = RedisCluster(host="127.0.0.1", port=cluster_port)
    log = RedisSessionLog(client, keys)
    try:
        lone = await log.create_session("s-lone", b"d", event("s-lone"))
        results = await asyncio.gather(
            *(log.create_session(f"s-{i}", b"d", event(f"s-{i}")) for i in range(300))
        )
        again = await log.create_session("s-1", b"other", event("s-1"))
        assert lone.created
        assert all(result.created for result in results)
        assert (again.document, again.created) == (b"d", False)
        assert await log.get_session("s-1") == b"d"
        assert await log.ping()
    finally:
        await log.aclose()
        await client.aclose()
    with SyncRedisCluster(host="127.0.0.1", port=cluster_port) as sync_client:
        reader = StreamReader(sync_client, keys=keys)
        read = [e for b in reader.read_assignments(batch=64) for e in b]
        pages = list(reader.read_assignment_pages(batch=64))
    assert {e.session_id for _, e in read} == {"s-lone", *(f"s-{i}" for i in range(300))}
    assert [entry for page in pages for entry in page.events()] == read


async def test_a_cluster_that_lost_its_scripts_reloads_them(
    cluster_port: int, event: EventFactory
) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster_port)
    log = RedisSessionLog(client, KeyLayout(prefix="vrtest-flushed", shards=8))
    try:
        await client.script_flush()
        for node in client.get_primaries():
            with redis.Redis(host=node.host, port=node.port) as conn:
                assert conn.script_exists(CREATE_SESSION_SHA) == [False]
        results = await asyncio.gather(
            *(log.create_session(f"s-{i}", b"d", event(f"s-{i}")) for i in range(50))
        )
        assert all(result.created for result in results)
    finally:
        await log.aclose()
        await client.aclose()
