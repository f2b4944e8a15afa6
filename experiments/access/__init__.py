"""API keys: who calls voxroute, with which role, for which tenant.

- `keys`: roles, the principal of a request, token minting and hashing.
- `key_store`: the keys in Redis (hashed, never the token), announced on pub/sub.
- `keyring`: a process's view of every key, kept current, looked up per request.
- `rate_limit`: per-key token buckets in Redis, shared by replicas.
"""

from __future__ import annotations

from .key_store import KeyExistsError, KeyStoreKeys, RedisKeyStore, StoredKey
from .keyring import Keyring, StaticKey
from .keys import Principal, Role, mint_token, token_digest
from .rate_limit import RateLimiter, RateLimits

__all__ = [
    "KeyExistsError",
    "KeyStoreKeys",
    "Keyring",
    "Principal",
    "RateLimiter",
    "RateLimits",
    "RedisKeyStore",
    "Role",
    "StaticKey",
    "StoredKey",
    "mint_token",
    "token_digest",
]
