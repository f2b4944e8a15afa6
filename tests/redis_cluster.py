"""A local three-primary Redis Cluster of real redis-server processes, for tests."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis


def free_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is a valid free port too."""
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
            raise TimeoutError(f"timed out waiting for {what}")
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


@contextmanager
def local_cluster(folder: Path, nodes: int = 3) -> Iterator[list[int]]:
    """Start `nodes` primaries (no replicas), create the cluster, yield their ports."""
    ports = free_ports(nodes)
    processes = []
    for port in ports:
        node_dir = folder / f"node{port}"
        node_dir.mkdir(parents=True)
        processes.append(
            subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--save", "", "--appendonly", "no", "--logfile", "redis.log"],
                cwd=node_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)
