"""RedisFlagStore on a real Redis: one seed under concurrent starts, atomic
version-checked writes, the audit stream, the changes channel, cluster-safe keys."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from experiments.catalog import Catalog
from experiments.errors import FlagValidationError
from experiments.flag_store import (
    Commit,
    FlagManager,
    FlagStoreKeys,
    RedisFlagStore,
    plan_change,
    weight_changes,
)
from experiments.flags.patch import FlagPatch

pytestmark = pytest.mark.redis
STT = "stt-provider"
RAMP = FlagPatch(weights={"deepgram-nova-3": 80, "assemblyai-universal": 20})


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    conn = Redis.from_url(redis_url)
    yield conn
    await conn.aclose()


@pytest.fixture
def store(client: Redis, prefix: str) -> RedisFlagStore:
    return RedisFlagStore(client, FlagStoreKeys(prefix))


@pytest.fixture
async def seeded(store: RedisFlagStore, catalog: Catalog, shipped: dict[str, Any]) -> FlagManager:
    flags = FlagManager(store, catalog)
    assert await flags.seed(shipped, source="flags.json")
    return flags


def test_every_key_shares_one_hash_tag(prefix: str) -> None:
    keys = FlagStoreKeys(prefix)
    names = [keys.docs, keys.versions, keys.meta, keys.audit, keys.changes]
    assert all(name.startswith(f"{prefix}:{{flags}}:") for name in names)


async def test_concurrent_first_starts_seed_once(
    client: Redis, prefix: str, catalog: Catalog, shipped: dict[str, Any]
) -> None:
    managers = [
        FlagManager(RedisFlagStore(client, FlagStoreKeys(prefix)), catalog) for _ in range(8)
    ]
    seeded = await asyncio.gather(
        *(m.seed(shipped, source=f"p{i}") for i, m in enumerate(managers))
    )
    assert sum(seeded) == 1
    stored = await managers[0].snapshot()
    assert stored.version == 1
    assert len(await managers[0].store.history()) == len(shipped["flags"]) + 1  # + set parts


async def test_the_store_reads_back_what_was_seeded(
    seeded: FlagManager, shipped: dict[str, Any]
) -> None:
    stored = await seeded.snapshot()
    assert stored.draft.flags == shipped["flags"]
    assert stored.draft.evaluators == shipped["$evaluators"]
    assert stored.draft.metadata == shipped["metadata"]


async def test_a_stale_plan_writes_nothing(seeded: FlagManager, catalog: Catalog) -> None:
    before = await seeded.snapshot()
    await seeded.patch(STT, RAMP, author="alice", reason="ramp")
    disabled = {**before.flags["vad-provider"], "state": "DISABLED"}
    stale = plan_change(before, before.draft.with_flag("vad-provider", disabled), catalog)
    assert await seeded.store.commit(stale, Commit("put", "bob", "", "id", 0)) is None
    after = await seeded.snapshot()
    assert after.version == 2
    assert after.flags["vad-provider"]["state"] == "ENABLED"


async def test_an_invalid_change_leaves_the_store_untouched(
    seeded: FlagManager, redis_url: str, prefix: str
) -> None:
    keys = FlagStoreKeys(prefix)
    with redis.Redis.from_url(redis_url) as conn:
        before = (conn.hgetall(keys.docs), conn.hgetall(keys.meta), conn.xlen(keys.audit))
        zero = FlagPatch(weights={"deepgram-nova-3": 0, "assemblyai-universal": 0})
        with pytest.raises(FlagValidationError):
            await seeded.patch(STT, zero, author="a", reason="r")
        assert (conn.hgetall(keys.docs), conn.hgetall(keys.meta), conn.xlen(keys.audit)) == before


async def test_audit_entries_carry_who_why_versions_diff_and_weights(seeded: FlagManager) -> None:
    await seeded.patch(STT, RAMP, author="alice", reason="ramp down")
    entry = (await seeded.history(STT))[0]
    assert (entry.author, entry.reason, entry.action) == ("alice", "ramp down", "patch")
    assert (entry.old_version, entry.new_version, entry.set_version) == (1, 2, 2)
    assert [op.path for op in entry.diff] == [
        "/targeting/if/3/fractional/0/1",
        "/targeting/if/3/fractional/1/1",
    ]
    (weights,) = entry.weights.values()
    assert weights == {"deepgram-nova-3": 80, "assemblyai-universal": 20}
    assert entry.ts_ms > 0
    assert entry.warnings


async def test_delete_keeps_the_version_counter(seeded: FlagManager) -> None:
    await seeded.delete("vad-provider", author="a")
    stored = await seeded.snapshot()
    assert "vad-provider" not in stored.flags
    assert stored.flag_version("vad-provider") == 2
    entry = (await seeded.history("vad-provider"))[0]
    assert entry.document is None
    assert entry.action == "delete"


async def test_rollback_restores_exactly(seeded: FlagManager) -> None:
    original = copy.deepcopy(dict((await seeded.flag(STT)).document))
    await seeded.patch(STT, RAMP, author="alice", reason="ramp")
    await seeded.rollback(STT, 1, author="bob", reason="undo")
    flag = await seeded.flag(STT)
    assert (flag.version, flag.document) == (3, original)


async def test_history_pages_through_a_long_stream(seeded: FlagManager) -> None:
    for weight in range(1, 13):
        patch = FlagPatch(default_variant="webrtc" if weight % 2 else "silero")
        await seeded.patch("vad-provider", patch, author=f"u{weight}")
    store = seeded.store
    assert isinstance(store, RedisFlagStore)
    entries = await store.history("vad-provider", limit=5)
    assert [e.new_version for e in entries] == [13, 12, 11, 10, 9]
    assert (await store.entry_of_version("vad-provider", 1)) is not None


async def test_every_write_is_announced_on_the_changes_channel(seeded: FlagManager) -> None:
    async with seeded.store.changes() as feed:
        assert not await feed.wait(0.05)
        await seeded.patch(STT, RAMP, author="alice", reason="ramp")
        assert await feed.wait(1.0)


async def test_weight_changes_for_the_analysis(seeded: FlagManager) -> None:
    await seeded.patch(STT, RAMP, author="alice", reason="ramp")
    changes = [c for c in weight_changes(reversed(await seeded.history(STT))) if c.old_weights]
    (ramp,) = changes
    assert ramp.new_weights == {"deepgram-nova-3": 80, "assemblyai-universal": 20}
    assert ramp.split_id.startswith("stt-provider/")
