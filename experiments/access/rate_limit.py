"""Per-key rate limits: a token bucket per key in Redis, shared by every replica.

Each role may have a rate (requests per second, refilled continuously) and a
burst (the bucket's size, `burst_s` seconds of the rate, at least one request).
One script call per request takes a token or says how long until the next one
(`Retry-After`); the bucket uses the Redis server's clock, so replicas with
skewed clocks share it fairly. Off by default: with no rate for a role its keys
never reach Redis here. A Redis that is away lets requests through (the write
that follows will meet the same Redis and answer for it).

    <prefix>:ratelimit:{<key name>}   hash: tokens, ts (ms); expires when full again
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from ..eventlog.group_commit import UNAVAILABLE, AsyncRedis, LuaScript
from .keys import Principal, Role

logger = logging.getLogger("voxroute.auth")

# KEYS[1]: the bucket. ARGV: rate (tokens per second), burst (bucket size).
# Returns {1, 0} when a token was taken, else {0, ms until one is there}.
_TAKE = LuaScript("""
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1]) or burst
local ts = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local taken, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {taken, wait}
""")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests per second per key, by role (None: unlimited), and the burst in seconds."""

    admin: float | None = None
    tenant: float | None = None
    reader: float | None = None
    burst_s: float = 1.0

    def rate(self, role: Role) -> float | None:
        rate: float | None = getattr(self, role.value)
        return rate

    def burst(self, rate: float) -> float:
        return max(1.0, rate * self.burst_s)

    @property
    def any(self) -> bool:
        return any(r is not None for r in (self.admin, self.tenant, self.reader))


class RateLimiter:
    """Takes a token from the caller's bucket (see the module docstring)."""

    def __init__(self, client: AsyncRedis, prefix: str, limits: RateLimits) -> None:
        self._client = client
        self._prefix = prefix
        self.limits = limits

    async def retry_after(self, principal: Principal) -> int | None:
        """None when the request may go on, else the seconds to wait (at least 1)."""
        rate = self.limits.rate(principal.role)
        if rate is None or principal.open:
            return None
        key = f"{self._prefix}:ratelimit:{{{principal.name}}}"
        try:
            taken, wait_ms = await _TAKE.call(
                self._client, [key], [repr(rate), repr(self.limits.burst(rate))]
            )
        except UNAVAILABLE as exc:
            logger.warning("rate limit of key %r not checked: %s", principal.name, exc)
            return None
        return None if int(taken) else max(1, math.ceil(int(wait_ms) / 1000))
