"""FlagManager on the in-memory store: versions, whole-set validation, dry runs,
reasons, safety-rail warnings, history and rollback."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from experiments.catalog import Catalog
from experiments.errors import ErrorCode, ExperimentError, FlagValidationError
from experiments.flag_store import (
    FlagManager,
    InMemoryFlagStore,
    StoredFlagSet,
    ValidatedFlagSet,
    weight_changes,
)
from experiments.flags.patch import FlagPatch

STT = "stt-provider"
RAMP = FlagPatch(weights={"deepgram-nova-3": 80, "assemblyai-universal": 20})


async def _flag(manager: FlagManager, key: str = STT) -> dict[str, Any]:
    return copy.deepcopy(dict((await manager.flag(key)).document))


async def test_seeding_gives_every_flag_version_1(manager: FlagManager) -> None:
    stored = await manager.snapshot()
    assert stored.version == 1
    assert set(stored.versions.values()) == {1}
    assert (await manager.history(STT))[0].action == "seed"


async def test_seeding_a_non_empty_store_does_nothing(
    manager: FlagManager, shipped: dict[str, Any]
) -> None:
    assert not await manager.seed(shipped, source="again")
    assert (await manager.snapshot()).version == 1


async def test_a_patch_bumps_the_flag_and_set_versions_only(manager: FlagManager) -> None:
    result = await manager.patch(STT, RAMP, author="alice", reason="ramp down")
    assert result.published
    stored = await manager.snapshot()
    assert (stored.version, stored.flag_version(STT), stored.flag_version("vad-provider")) == (
        2, 2, 1,
    )  # fmt: skip
    (weights,) = result.plan.changes[0].weights.values()
    assert weights == {"deepgram-nova-3": 80, "assemblyai-universal": 20}


async def test_the_published_set_carries_the_store_version(
    catalog: Catalog, shipped: dict[str, Any]
) -> None:
    published: list[tuple[ValidatedFlagSet, int]] = []

    def publish(validated: ValidatedFlagSet, version: int) -> None:
        published.append((validated, version))

    flags = FlagManager(InMemoryFlagStore(), catalog, on_publish=publish)
    await flags.seed(shipped, source="f")
    await flags.patch("vad-provider", FlagPatch(default_variant="webrtc"), author="a")
    validated, version = published[-1]
    assert version == 2
    assert validated.compiled.flags["vad-provider"].version.startswith("2:")
    assert validated.compiled.flags["turn-detector"].version.startswith("1:")


async def test_a_running_split_needs_a_reason(manager: FlagManager) -> None:
    with pytest.raises(ExperimentError, match="reason is required") as caught:
        await manager.patch(STT, RAMP, author="alice")
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert (await manager.snapshot()).version == 1


async def test_a_flag_without_split_needs_no_reason(manager: FlagManager) -> None:
    result = await manager.patch("vad-provider", FlagPatch(default_variant="webrtc"), author="a")
    assert result.published


async def test_weight_changes_warn_about_analysis_periods(manager: FlagManager) -> None:
    result = await manager.patch(STT, RAMP, author="alice", reason="ramp")
    (warning,) = result.to_dict()["changes"][0]["warnings"]
    assert "deepgram-nova-3=50 assemblyai-universal=50 -> deepgram-nova-3=80" in warning
    assert "periods" in warning


async def test_disabling_warns_that_defaults_serve_at_once(manager: FlagManager) -> None:
    result = await manager.patch(STT, FlagPatch(state="DISABLED"), author="a", reason="incident")
    assert any("catalog defaults (stt) at once" in w for w in result.plan.changes[0].warnings)


async def test_a_stale_version_is_a_conflict_and_changes_nothing(manager: FlagManager) -> None:
    document = await _flag(manager)
    await manager.patch(STT, RAMP, author="alice", reason="ramp")
    with pytest.raises(ExperimentError) as caught:
        await manager.put(STT, document, if_match=1, author="bob", reason="stale")
    assert caught.value.code is ErrorCode.CONFLICT
    assert caught.value.context["current_version"] == 2
    assert (await manager.snapshot()).version == 2


async def test_put_without_version_creates_but_never_overwrites(manager: FlagManager) -> None:
    new_flag = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}
    await manager.put("new-flag", new_flag, if_match=None, author="a")
    assert (await manager.flag("new-flag")).version == 1
    with pytest.raises(ExperimentError) as caught:
        await manager.put("new-flag", new_flag, if_match=None, author="a")
    assert caught.value.code is ErrorCode.CONFLICT


async def test_an_invalid_set_is_refused_naming_flag_path_problem(manager: FlagManager) -> None:
    document = await _flag(manager)
    document["variants"]["deepgram-nova-3"] = "nobody/unknown"
    with pytest.raises(FlagValidationError) as caught:
        await manager.put(STT, document, if_match=1, author="a", reason="r")
    assert (caught.value.flag_key, caught.value.path) == (STT, "/variants/deepgram-nova-3")
    assert "unknown provider id" in caught.value.problem
    assert (await manager.snapshot()).version == 1


async def test_split_weights_must_have_a_positive_sum(manager: FlagManager) -> None:
    zero = FlagPatch(weights={"deepgram-nova-3": 0, "assemblyai-universal": 0})
    with pytest.raises(FlagValidationError, match="sum to 0") as caught:
        await manager.patch(STT, zero, author="a", reason="r")
    assert caught.value.path == "/targeting/if/3"


async def test_a_negative_weight_is_refused_by_the_strict_compile(manager: FlagManager) -> None:
    document = await _flag(manager)
    document["targeting"]["if"][3]["fractional"][0][1] = -5
    with pytest.raises(FlagValidationError, match="non-negative integer"):
        await manager.put(STT, document, if_match=1, author="a", reason="r")


async def test_a_dry_run_reports_diff_and_validation_and_publishes_nothing(
    manager: FlagManager,
) -> None:
    result = await manager.patch(STT, RAMP, author="a", dry_run=True)
    body = result.to_dict()
    assert (body["published"], body["valid"], body["reason_required"]) == (False, True, [STT])
    assert [op["path"] for op in body["changes"][0]["diff"]] == [
        "/targeting/if/3/fractional/0/1",
        "/targeting/if/3/fractional/1/1",
    ]
    zero = FlagPatch(weights={"deepgram-nova-3": 0, "assemblyai-universal": 0})
    invalid = (await manager.patch(STT, zero, author="a", dry_run=True)).to_dict()
    assert not invalid["valid"]
    assert invalid["error"]["context"]["flag_key"] == STT
    assert (await manager.snapshot()).version == 1


async def test_push_replaces_the_set_and_versions_only_what_changed(
    manager: FlagManager, shipped: dict[str, Any]
) -> None:
    pushed = copy.deepcopy(shipped)
    del pushed["flags"]["turn-detector"]
    pushed["flags"]["vad-provider"]["defaultVariant"] = "webrtc"
    result = await manager.push(pushed, author="a")
    assert sorted(c.key for c in result.plan.changes) == ["turn-detector", "vad-provider"]
    stored = await manager.snapshot()
    assert "turn-detector" not in stored.flags
    assert stored.flag_version("turn-detector") == 2  # the delete is a version too
    assert any("catalog defaults for turn_detection" in w for w in result.to_dict()["warnings"])


async def test_a_changed_evaluator_versions_the_flags_that_use_it(
    manager: FlagManager, shipped: dict[str, Any]
) -> None:
    pushed = copy.deepcopy(shipped)
    pushed["$evaluators"]["split-regions"] = {"in": [{"var": "region"}, ["us"]]}
    result = await manager.push(pushed, author="a", reason="us only")
    assert [c.key for c in result.plan.changes] == [STT]
    assert result.plan.set_parts is not None
    history = await manager.store.history("")
    assert history[0].action == "push"


async def test_history_is_newest_first_with_author_and_reason(manager: FlagManager) -> None:
    await manager.patch(STT, RAMP, author="alice", reason="ramp down")
    await manager.patch(STT, FlagPatch(state="DISABLED"), author="bob", reason="incident")
    entries = await manager.history(STT)
    assert [(e.new_version, e.author, e.reason) for e in entries] == [
        (3, "bob", "incident"),
        (2, "alice", "ramp down"),
        (1, "voxroute", "seeded from flags.json"),
    ]


async def test_a_deleted_flag_keeps_its_history_and_rollback_restores_it(
    manager: FlagManager,
) -> None:
    original = await _flag(manager)
    await manager.delete(STT, author="alice", reason="retired")
    assert [e.action for e in await manager.history(STT)] == ["delete", "seed"]
    await manager.rollback(STT, 1, author="bob", reason="back")
    assert await _flag(manager) == original


async def test_history_of_a_key_never_seen_is_not_found(manager: FlagManager) -> None:
    with pytest.raises(ExperimentError) as caught:
        await manager.history("no-such-flag")
    assert caught.value.code is ErrorCode.FLAG_NOT_FOUND


async def test_rollback_restores_the_document_exactly_as_a_new_version(
    manager: FlagManager,
) -> None:
    original = await _flag(manager)
    await manager.patch(STT, RAMP, author="alice", reason="ramp")
    await manager.patch(STT, FlagPatch(state="DISABLED"), author="bob", reason="incident")
    result = await manager.rollback(STT, 1, author="carol", reason="back to 50/50")
    assert result.plan.changes[0].new_version == 4
    assert await _flag(manager) == original
    assert (await manager.history(STT))[0].action == "rollback"


async def test_rollback_to_an_unknown_version_is_not_found(manager: FlagManager) -> None:
    with pytest.raises(ExperimentError) as caught:
        await manager.rollback(STT, 9, author="a", reason="r")
    assert caught.value.code is ErrorCode.FLAG_NOT_FOUND


async def test_weight_changes_read_from_the_audit(manager: FlagManager) -> None:
    await manager.patch(STT, RAMP, author="alice", reason="ramp")
    await manager.patch(STT, FlagPatch(state="DISABLED"), author="bob", reason="incident")
    changes = weight_changes(reversed(await manager.history(STT)))
    seed, ramp = changes
    assert seed.old_weights == {}
    assert seed.version == 1
    assert (ramp.old_weights, ramp.new_weights) == (
        {"deepgram-nova-3": 50, "assemblyai-universal": 50},
        {"deepgram-nova-3": 80, "assemblyai-universal": 20},
    )
    assert (ramp.version, ramp.author, ramp.reason) == (2, "alice", "ramp")


class _Racing(InMemoryFlagStore):
    """Another writer changes another flag between our read and our write, once."""

    def __init__(self, other: FlagManager) -> None:
        super().__init__()
        self.other: FlagManager | None = other

    async def read(self) -> StoredFlagSet:
        stored = await super().read()
        other, self.other = self.other, None
        if other is not None and stored.version > 0:
            other.store = self
            await other.patch("vad-provider", FlagPatch(default_variant="webrtc"), author="bob")
        return stored


async def test_a_concurrent_change_elsewhere_is_kept_and_ours_replanned(
    catalog: Catalog, shipped: dict[str, Any]
) -> None:
    store = _Racing(FlagManager(InMemoryFlagStore(), catalog))
    flags = FlagManager(store, catalog)
    store.other = None
    await flags.seed(shipped, source="f")
    store.other = FlagManager(store, catalog)
    result = await flags.patch(STT, RAMP, author="alice", reason="ramp")
    assert result.set_version == 3
    stored = await flags.snapshot()
    assert stored.flags["vad-provider"]["defaultVariant"] == "webrtc"
    assert stored.flag_version(STT) == 2
