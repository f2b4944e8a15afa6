"""Clients from URLs: the hiredis packer sends exactly what redis-py's would."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis

from experiments.eventlog.connect import HiredisPackingConnection, async_client, split_cluster_url


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "abc", 2, "vr:{s0}:session:x", b"k2", 1.5, 10, "caf\u00e9", b"\x00\xff"),
        ("SET", "k", 1e20, -3, 0.1, float("inf"), 2**70, memoryview(b"mv"), bytearray(b"ba")),
        ("CONFIG GET", "maxmemory"),
        (b"XRANGE", b"s", b"-", b"+", b"COUNT", 10),
    ],
)
def test_hiredis_packing_equals_redis_py_packing(args: tuple[object, ...]) -> None:
    python = aioredis.Connection()
    fast = HiredisPackingConnection()
    assert b"".join(fast.pack_command(*args)) == b"".join(python.pack_command(*args))


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}])
def test_hiredis_packing_refuses_what_redis_py_refuses(value: object) -> None:
    with pytest.raises(redis.DataError):
        aioredis.Connection().pack_command("SET", "k", value)
    with pytest.raises(redis.DataError):
        HiredisPackingConnection().pack_command("SET", "k", value)


def test_another_encoding_is_applied_before_packing() -> None:
    python = aioredis.Connection(encoding="latin-1")
    fast = HiredisPackingConnection(encoding="latin-1")
    args = ("SET", "caf\u00e9", 2.5)
    assert b"".join(fast.pack_command(*args)) == b"".join(python.pack_command(*args))
    assert b"caf\xe9" in b"".join(fast.pack_command(*args))


def test_cluster_urls_are_recognised() -> None:
    assert split_cluster_url("redis+cluster://h:7000") == (True, "redis://h:7000")
    assert split_cluster_url("rediss+cluster://h:7000/0") == (True, "rediss://h:7000/0")
    assert split_cluster_url("redis://h:6379/0") == (False, "redis://h:6379/0")


async def test_a_tcp_client_packs_with_hiredis_and_answers(redis_url: str) -> None:
    client = async_client(redis_url, socket_timeout_s=2, connect_timeout_s=2)
    try:
        assert client.connection_pool.connection_class is HiredisPackingConnection
        assert await client.echo("caf\u00e9") == "caf\u00e9".encode()
    finally:
        await client.aclose()


def test_a_unix_socket_url_keeps_its_connection_class() -> None:
    client = async_client("unix:///tmp/x.sock", socket_timeout_s=1, connect_timeout_s=1)
    assert client.connection_pool.connection_class is aioredis.UnixDomainSocketConnection
