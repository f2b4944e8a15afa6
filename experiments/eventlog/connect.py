"""Redis clients from URLs, standalone or cluster.

`redis://`, `rediss://` and `unix://` URLs give a plain client;
`redis+cluster://host:port` (or `rediss+cluster://`) gives a cluster client that
discovers the other nodes from the one named. Every client returns bytes, has
bounded socket timeouts, and retries a failed command a bounded number of times
so that a Redis that is away fails calls quickly instead of hanging.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis
import redis.asyncio as aioredis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

AsyncClient = aioredis.Redis | aioredis.RedisCluster
SyncClient = redis.Redis | redis.RedisCluster


class HiredisPackingConnection(aioredis.Connection):
    """A TCP connection that packs commands with hiredis (C) instead of redis-py's
    Python packer, as redis-py's sync client already does. What reaches Redis is
    byte for byte the same (tested): with the default UTF-8 strict encoding,
    hiredis packs str, bytes, int and float exactly as redis-py's encoder
    does, so the arguments go to it as they are (encoding each in Python
    first doubled the packing cost of an outcome batch's script call,
    bench/bench_outcomes.py); with another encoding, or a
    bytearray or memoryview among them, they go through redis-py's encoder
    first. Like redis-py, a bool or another type is refused with `DataError`."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        encoder = self.encoder
        if encoder.encoding.lower() not in _UTF8 or encoder.encoding_errors != "strict":
            args = tuple(encoder.encode(arg) for arg in args)  # type: ignore[no-untyped-call]
        try:
            packed: bytes = hiredis.pack_command(args)
        except TypeError:  # a bytearray or memoryview, or a type redis-py refuses too
            encode = encoder.encode  # DataError for a type redis-py refuses
            args = tuple(bytes(encode(arg)) for arg in args)  # type: ignore[no-untyped-call]
            packed = hiredis.pack_command(args)
        return [packed]


_UTF8 = frozenset({"utf-8", "utf8"})


def split_cluster_url(url: str) -> tuple[bool, str]:
    """(is it a cluster URL, the URL with the plain scheme redis-py understands)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in CLUSTER_SCHEMES:
        return True, f"{CLUSTER_SCHEMES[scheme]}://{rest}"
    return False, url


def async_client(
    url: str, *, socket_timeout_s: float, connect_timeout_s: float, retries: int = 1
) -> AsyncClient:
    cluster, plain = split_cluster_url(url)
    retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), retries)
    if cluster:
        return aioredis.RedisCluster.from_url(
            plain,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=retry,
        )
    extra: dict[str, Any] = {}
    if plain.startswith("redis://"):  # TCP without TLS: unix:// and rediss:// keep theirs
        extra["connection_class"] = HiredisPackingConnection
    return aioredis.Redis.from_url(
        plain,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        retry=retry,
        **extra,
    )


def sync_client(
    url: str, *, socket_timeout_s: float, connect_timeout_s: float, retries: int = 3
) -> SyncClient:
    cluster, plain = split_cluster_url(url)
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries)
    if cluster:
        return redis.RedisCluster.from_url(
            plain,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=retry,
        )
    return redis.Redis.from_url(
        plain,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        retry=retry,
    )
