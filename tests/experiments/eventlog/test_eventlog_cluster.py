"""RedisSessionLog and StreamReader on a local three-node Redis Cluster."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import RedisCluster
from redis.cluster import RedisCluster as SyncRedisCluster

from experiments.eventlog import KeyLayout, RedisSessionLog, StreamReader
from experiments.eventlog.redis_log import CREATE_SESSION_SHA
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


def free_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is a valid port too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe, socket.socket() as bus:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port + 10000 > 65535 or port in ports:
                continue
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            ports.append(port)
    return ports


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def answers(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5) as conn:
        try:
            return bool(conn.ping())
        except (redis.RedisError, OSError):
            return False


def cluster_ok(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=1) as conn:
        return b"cluster_state:ok" in conn.execute_command("CLUSTER", "INFO")


@pytest.fixture(scope="module")
def cluster_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Three primaries, no replicas; the port of the first."""
    ports = free_ports(3)
    processes = []
    for port in ports:
        folder: Path = tmp_path_factory.mktemp(f"node{port}")
        processes.append(
            subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--save", "", "--appendonly", "no", "--logfile", "redis.log"],
                cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    try:
        for port in ports:
            wait_until(lambda port=port: answers(port), f"node {port}")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        for port in ports:
            wait_until(lambda port=port: cluster_ok(port), f"cluster state ok on {port}")
        yield ports[0]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


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
        read = [
            e for b in StreamReader(sync_client, keys=keys).read_assignments(batch=64) for e in b
        ]
    assert {e.session_id for _, e in read} == {"s-lone", *(f"s-{i}" for i in range(300))}


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
