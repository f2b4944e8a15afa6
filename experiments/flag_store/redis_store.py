"""`RedisFlagStore`: the flag set in Redis, versioned, audited, announced on pub/sub.

Keys (see `keys`) share the hash tag `{flags}`. A write is one server-side script
(`WRITE_SCRIPT`): it checks that the flag-set version is still the one the change
was planned on, bumps the flag-set version and each changed flag's version,
writes or deletes the flag documents, appends one audit entry per changed flag
(and one for the set's `$evaluators`/`metadata` when they change), and publishes
the new flag-set version on the changes channel. A stale plan writes nothing.
Seeding is the same script planned on the empty store (version 0), so two
processes starting at once cannot both seed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from ..errors import ExperimentError, StorageUnavailableError
from ..eventlog.connect import split_cluster_url
from ..eventlog.group_commit import UNAVAILABLE, LuaScript, bounded_client, count_redis_error
from .audit import AUDIT_SCHEMA_VERSION, AUDIT_TYPE, AuditEntry
from .documents import FlagSetDraft, StoredFlagSet, encode
from .keys import FlagStoreKeys
from .plan import ChangePlan
from .protocols import Commit

_COMMON = 8  # ARGV slots before the flags
_PER_FLAG = 6
# KEYS: docs, versions, meta, audit.
# ARGV[1] expected flag-set version, [2] channel, [3] action, [4] author, [5] reason,
# [6] ts_ms, [7] change id, [8] set parts: '' unchanged, else a JSON list
# [evaluators JSON, metadata JSON, diff JSON]; then per flag: key, document ('' deletes),
# diff, old weights, weights, warnings.
# Returns {0, current set version} when stale, else {1, set version, key1, v1, ...}.
WRITE_SCRIPT = f"""
local current = tonumber(redis.call('HGET', KEYS[3], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return {{0, current}} end
local set_version = redis.call('HINCRBY', KEYS[3], 'version', 1)
local function audit(flag, old, new, doc, diff, old_w, new_w, warnings)
  redis.call('XADD', KEYS[4], '*', 'type', '{AUDIT_TYPE}', 'v', '{AUDIT_SCHEMA_VERSION}',
    'flag', flag, 'action', ARGV[3], 'author', ARGV[4], 'reason', ARGV[5], 'ts_ms', ARGV[6],
    'change_id', ARGV[7], 'set_version', set_version, 'old_version', old, 'new_version', new,
    'doc', doc, 'diff', diff, 'old_weights', old_w, 'weights', new_w, 'warnings', warnings)
end
if ARGV[8] ~= '' then
  local parts = cjson.decode(ARGV[8])
  local old = tonumber(redis.call('HGET', KEYS[3], 'parts_version') or '0')
  local new = redis.call('HINCRBY', KEYS[3], 'parts_version', 1)
  redis.call('HSET', KEYS[3], 'evaluators', parts[1], 'metadata', parts[2])
  local doc = '{{"$evaluators":' .. parts[1] .. ',"metadata":' .. parts[2] .. '}}'
  audit('', old, new, doc, parts[3], '{{}}', '{{}}', '[]')
end
local out = {{1, set_version}}
for i = {_COMMON + 1}, #ARGV, {_PER_FLAG} do
  local key, doc = ARGV[i], ARGV[i + 1]
  local old = tonumber(redis.call('HGET', KEYS[2], key) or '0')
  local new = redis.call('HINCRBY', KEYS[2], key, 1)
  if doc == '' then redis.call('HDEL', KEYS[1], key) else redis.call('HSET', KEYS[1], key, doc) end
  audit(key, old, new, doc, ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
  out[#out + 1] = key
  out[#out + 1] = new
end
redis.call('PUBLISH', ARGV[2], set_version)
return out
"""
_WRITE = LuaScript(WRITE_SCRIPT)
_PAGE = 500
_Page = list[tuple[bytes, dict[bytes, bytes]]]


def _write_args(plan: ChangePlan, commit: Commit, channel: str) -> list[str]:
    parts = ""
    if plan.set_parts is not None:
        diff = [op.to_dict() for op in plan.set_parts_diff]
        parts = encode(
            [
                encode(plan.set_parts["$evaluators"]),
                encode(plan.set_parts["metadata"]),
                encode(diff),
            ]
        )
    args = [
        str(plan.base.version), channel, commit.action, commit.author, commit.reason,
        str(commit.ts_ms), commit.change_id, parts,
    ]  # fmt: skip
    for change in plan.changes:
        doc = "" if change.new_document is None else encode(change.new_document)
        args += [
            change.key, doc, encode([op.to_dict() for op in change.diff]),
            encode(change.old_weights), encode(change.weights), encode(list(change.warnings)),
        ]  # fmt: skip
    return args


def _decode_hash(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


class RedisChangeFeed:
    """A pub/sub subscription to the changes channel."""

    def __init__(self, client: Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._pubsub: PubSub | None = None

    async def __aenter__(self) -> RedisChangeFeed:
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self._channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(*UNAVAILABLE):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def wait(self, timeout_s: float) -> bool:
        assert self._pubsub is not None, "use the feed as an async context manager"  # noqa: S101
        message = await self._pubsub.get_message(timeout=timeout_s)
        if message is None:
            return False
        while await self._pubsub.get_message(timeout=0) is not None:  # several at once: one read
            pass
        return True


class RedisFlagStore:
    """A `FlagStore` on Redis; `client` returns bytes. See the module docstring."""

    def __init__(self, client: Redis, keys: FlagStoreKeys, *, owns_client: bool = False) -> None:
        self._client = client
        self.keys = keys
        self._owns_client = owns_client

    @classmethod
    def from_url(cls, url: str, *, prefix: str, socket_timeout_s: float = 2.0) -> RedisFlagStore:
        if split_cluster_url(url)[0]:
            raise ExperimentError(
                "flag store: Redis-backed flag management does not run on a Redis Cluster yet "
                "(its change notifications use pub/sub on one node); set "
                "VOXROUTE_FLAG_STORE=file",
                context={"redis_url": url},
            )
        client = bounded_client(url, socket_timeout_s, socket_timeout_s)
        assert isinstance(client, Redis)  # noqa: S101 - a plain URL gives a plain client
        return cls(client, FlagStoreKeys(prefix), owns_client=True)

    @property
    def name(self) -> str:
        return f"redis {self.keys.prefix}:{{flags}}"

    async def read(self) -> StoredFlagSet:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self.keys.docs)
                pipe.hgetall(self.keys.versions)
                pipe.hgetall(self.keys.meta)
                docs, versions, meta = await pipe.execute()
        except UNAVAILABLE as exc:
            raise self._unavailable("read the flags", exc) from exc
        meta_text = _decode_hash(meta)
        draft = FlagSetDraft(
            {k: json.loads(v) for k, v in sorted(_decode_hash(docs).items())},
            json.loads(meta_text.get("evaluators") or "{}"),
            json.loads(meta_text.get("metadata") or "{}"),
        )
        return StoredFlagSet(
            int(meta_text.get("version", "0")),
            draft,
            {k: int(v) for k, v in _decode_hash(versions).items()},
            int(meta_text.get("parts_version", "0")),
        )

    async def commit(self, plan: ChangePlan, commit: Commit) -> int | None:
        keys = (self.keys.docs, self.keys.versions, self.keys.meta, self.keys.audit)
        args = _write_args(plan, commit, self.keys.changes)
        try:
            reply = await _WRITE.call(self._client, keys, args)
        except UNAVAILABLE as exc:
            raise self._unavailable("write the flags", exc) from exc
        return int(reply[1]) if int(reply[0]) == 1 else None

    async def history(self, flag_key: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        found: list[AuditEntry] = []
        async for entry in self._newest_first():
            if flag_key is None or entry.flag_key == flag_key:
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    async def entry_of_version(self, flag_key: str, version: int) -> AuditEntry | None:
        async for entry in self._newest_first():
            if entry.flag_key == flag_key and entry.new_version == version:
                return entry
        return None

    async def _newest_first(self) -> AsyncIterator[AuditEntry]:
        """Audit entries from the newest, read in pages."""
        end = "+"
        while True:
            try:
                page = cast(
                    "_Page", await self._client.xrevrange(self.keys.audit, end, "-", count=_PAGE)
                )
            except UNAVAILABLE as exc:
                raise self._unavailable("read the flag audit", exc) from exc
            for entry_id, fields in page:
                yield AuditEntry.decode(entry_id, fields)
            if len(page) < _PAGE:
                return
            end = "(" + page[-1][0].decode()

    def changes(self) -> RedisChangeFeed:
        return RedisChangeFeed(self._client, self.keys.changes)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _unavailable(self, what: str, exc: BaseException) -> StorageUnavailableError:
        count_redis_error("flag_store", exc)
        return StorageUnavailableError(
            f"cannot {what} in {self.name}: {exc!r}", context={"store": self.name}
        )
