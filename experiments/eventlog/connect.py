"""Redis clients from URLs, standalone or cluster.

`redis://`, `rediss://` and `unix://` URLs give a plain client;
`redis+cluster://host:port` (or `rediss+cluster://`) gives a cluster client that
discovers the other nodes from the one named. Every client returns bytes, has
bounded socket timeouts, and retries a failed command a bounded number of times
so that a Redis that is away fails calls quickly instead of hanging.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

AsyncClient = aioredis.Redis | aioredis.RedisCluster
SyncClient = redis.Redis | redis.RedisCluster


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
    return aioredis.Redis.from_url(
        plain,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        retry=retry,
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
