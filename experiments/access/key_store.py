"""`RedisKeyStore`: API keys in Redis, hashed, versioned.

Keys share the hash tag `{keys}` (one cluster slot, so one script writes them all)::

    <prefix>:{keys}:by_digest   hash: token digest -> the key's record (JSON: name,
                                role, tenant_id, created_ms)
    <prefix>:{keys}:by_name     hash: key name -> token digest
    <prefix>:{keys}:last_used   hash: key name -> last use (ms since the epoch)
    <prefix>:{keys}:meta        hash: `version` (bumped by every change) and
                                `secret_check` (the secret's fingerprint)

The token itself is never stored: `by_digest` is keyed by HMAC-SHA256 of it
under the server secret (see `keys`). Creating and revoking are one script each,
so a name is taken once and a revoked key disappears from both hashes at once;
both bump `meta.version`, which every process polls (see `keyring`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import ErrorCode, ExperimentError, StorageUnavailableError
from ..eventlog.group_commit import UNAVAILABLE, AsyncRedis, LuaScript, bounded_client
from ..eventlog.keys import DEFAULT_PREFIX, KeyLayout
from .keys import Principal, Role, mint_token, token_digest

HASH_TAG = "{keys}"
MAX_NAME_LENGTH = 64
_SECRET_CHECK = b"voxroute key secret check"

# KEYS: by_digest, by_name, meta. ARGV: name, digest, record, secret fingerprint.
# Returns -1 when the stored keys were made with another secret, 0 when the name
# is taken, else the new version.
_CREATE = LuaScript("""
local check = redis.call('HGET', KEYS[3], 'secret_check')
if check and check ~= ARGV[4] then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], 'secret_check', ARGV[4])
return redis.call('HINCRBY', KEYS[3], 'version', 1)
""")
# KEYS: by_digest, by_name, meta, last_used. ARGV: name.
_REVOKE = LuaScript("""
local digest = redis.call('HGET', KEYS[2], ARGV[1])
if not digest then return 0 end
redis.call('HDEL', KEYS[1], digest)
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return redis.call('HINCRBY', KEYS[3], 'version', 1)
""")


@dataclass(frozen=True, slots=True)
class KeyStoreKeys:
    """Key names of the key store under one prefix (checked like the event log's)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        KeyLayout(prefix=self.prefix)  # the same rules: non-empty, no braces

    def key(self, name: str) -> str:
        """`by_digest`, `by_name`, `last_used` or `meta`."""
        return f"{self.prefix}:{HASH_TAG}:{name}"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as stored: everything but the token. `last_used_ms` is 0 when never used."""

    name: str
    role: Role
    tenant_id: str | None
    created_ms: int
    last_used_ms: int = 0

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.tenant_id)

    def record(self) -> bytes:
        return orjson.dumps(
            {"name": self.name, "role": self.role.value, "tenant_id": self.tenant_id,
             "created_ms": self.created_ms}
        )  # fmt: skip

    @classmethod
    def from_record(cls, raw: bytes) -> StoredKey:
        data = orjson.loads(raw)
        return cls(data["name"], Role(data["role"]), data["tenant_id"], int(data["created_ms"]))


class KeyExistsError(ExperimentError):
    code = ErrorCode.CONFLICT


def check_key_name(name: str) -> None:
    """Names are shown in lists and audit entries: short, printable, no separators."""
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable() or ":" in name \
            or "," in name or name != name.strip():  # fmt: skip
        raise ExperimentError(
            f"key name {name!r}: 1 to {MAX_NAME_LENGTH} printable characters without "
            "':', ',' or surrounding spaces",
            context={"field": "name"},
        )


def secret_fingerprint(secret: bytes) -> str:
    """What `meta.secret_check` holds: tells a process whether its secret is the
    one the stored keys were hashed with, without revealing the secret."""
    return hmac.new(secret, _SECRET_CHECK, hashlib.sha256).hexdigest()


class RedisKeyStore:
    """API keys in Redis (see the module docstring); `client` returns bytes."""

    def __init__(self, client: AsyncRedis, secret: bytes, keys: KeyStoreKeys) -> None:
        self._client = client
        self._secret = secret
        self.keys = keys

    @classmethod
    def from_url(
        cls, url: str, secret: bytes, *, prefix: str, socket_timeout_s: float = 2.0
    ) -> RedisKeyStore:
        client = bounded_client(url, socket_timeout_s, socket_timeout_s)
        return cls(client, secret, KeyStoreKeys(prefix))

    @property
    def client(self) -> AsyncRedis:
        return self._client

    def digest(self, token: str) -> str:
        return token_digest(self._secret, token)

    async def check_secret(self) -> None:
        """Raise when the stored keys were hashed with another secret than this
        process's (every stored key would be refused); reads only."""
        async with self._guard("check the key secret"):
            stored = _text(await self._client.hget(self.keys.key("meta"), "secret_check"))
        if stored and not hmac.compare_digest(stored, secret_fingerprint(self._secret)):
            raise _other_secret(self.keys)

    async def create(self, name: str, role: Role, tenant_id: str | None = None) -> str:
        """Store a new key and return its token (the only time it is seen)."""
        check_key_name(name)
        Principal(name, role, tenant_id)  # a tenant key has a tenant, the others none
        token = mint_token()
        stored = StoredKey(name, role, tenant_id, time.time_ns() // 1_000_000)
        keys = [self.keys.key(n) for n in ("by_digest", "by_name", "meta")]
        args = [name, self.digest(token), stored.record(), secret_fingerprint(self._secret)]
        async with self._guard("create the key"):
            version = await _CREATE.call(self._client, keys, args)
        if int(version) < 0:
            raise _other_secret(self.keys)
        if int(version) == 0:
            raise KeyExistsError(f"a key named {name!r} exists already", context={"name": name})
        return token

    async def revoke(self, name: str) -> bool:
        """Delete the key `name`; False when there is none."""
        keys = [self.keys.key(n) for n in ("by_digest", "by_name", "meta", "last_used")]
        async with self._guard("revoke the key"):
            version = await _REVOKE.call(self._client, keys, [name])
        return int(version) != 0

    async def find(self, digest: str) -> StoredKey | None:
        """The key whose token has this digest."""
        async with self._guard("read a key"):
            raw = await self._client.hget(self.keys.key("by_digest"), digest)
        return None if raw is None else StoredKey.from_record(_bytes(raw))

    async def load(self) -> tuple[int, dict[str, StoredKey]]:
        """The store's version and every key by digest."""
        async with self._guard("read the keys"), self._client.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.key("meta"), "version")
            pipe.hgetall(self.keys.key("by_digest"))
            version, raw = await pipe.execute()
        keys = {d.decode(): StoredKey.from_record(r) for d, r in raw.items()}
        return int(version or 0), keys

    async def version(self) -> int:
        async with self._guard("read the key version"):
            return int(await self._client.hget(self.keys.key("meta"), "version") or 0)

    async def list(self) -> list[StoredKey]:
        """Every key with its last use, by name."""
        _, by_digest = await self.load()
        async with self._guard("read the keys' last use"):
            used = await self._client.hgetall(self.keys.key("last_used"))
        last = {_text(k): int(v) for k, v in used.items()}
        return sorted(
            (StoredKey(k.name, k.role, k.tenant_id, k.created_ms, last.get(k.name, 0))
             for k in by_digest.values()),
            key=lambda k: k.name,
        )  # fmt: skip

    async def touch(self, last_used: Mapping[str, int]) -> None:
        """Record when keys were last used (names to ms); batched by the keyring."""
        if last_used:
            async with self._guard("record key use"):
                mapping: dict[Any, Any] = dict(last_used)
                await self._client.hset(self.keys.key("last_used"), mapping=mapping)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _guard(self, what: str) -> _Guard:
        return _Guard(f"key store {self.keys.key('*')}: cannot {what}")


def _other_secret(keys: KeyStoreKeys) -> ExperimentError:
    return ExperimentError(
        "VOXROUTE_KEY_SECRET differs from the secret the stored API keys were made with "
        f"({keys.key('by_digest')}): every replica and the CLI need the same one",
        code=ErrorCode.FORBIDDEN,
    )


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str | None) -> str:
    return "" if value is None else value.decode() if isinstance(value, bytes) else value


class _Guard:
    """Turns a Redis that is away into `StorageUnavailableError` naming the store."""

    def __init__(self, message: str) -> None:
        self._message = message

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and isinstance(exc, UNAVAILABLE):
            raise StorageUnavailableError(f"{self._message}: {exc}") from exc
