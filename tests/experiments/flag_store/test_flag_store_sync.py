"""Keeping a provider current: FlagSync on a store, FlagFileWatcher on a file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from experiments.catalog import Catalog
from experiments.flag_store import FlagFileWatcher, FlagManager, FlagSync, InMemoryFlagStore
from experiments.flags import VoxrouteProvider, load_default_flag_set
from experiments.flags.patch import FlagPatch

STT = "stt-provider"
RAMP = FlagPatch(weights={"deepgram-nova-3": 80, "assemblyai-universal": 20})


def _weights(provider: VoxrouteProvider) -> str:
    result = provider.compiled.resolve(STT, "s-1", {"region": "eu", "tenant_id": "acme"})
    return str(result.flag_metadata["voxroute.split_weights"])


async def _until(check: Any, timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


async def test_sync_applies_each_new_version_and_reports_changed_keys(
    catalog: Catalog, shipped: dict[str, Any]
) -> None:
    store = InMemoryFlagStore()
    writer = FlagManager(store, catalog)
    await writer.seed(shipped, source="f")
    provider = VoxrouteProvider(load_default_flag_set())
    changes: list[list[str]] = []
    provider.add_change_listener(lambda _set, keys: changes.append(list(keys)))
    sync = FlagSync(store, provider, catalog, interval_s=60)
    sync.start()
    try:
        await _until(lambda: sync.applied_version == 1)
        await writer.patch(STT, RAMP, author="a", reason="ramp")
        await _until(lambda: sync.applied_version == 2)
    finally:
        await sync.stop()
    assert _weights(provider) == '{"deepgram-nova-3":80,"assemblyai-universal":20}'
    assert changes[-1] == [STT]
    assert provider.compiled.flags[STT].version.startswith("2:")


async def test_an_older_version_never_replaces_a_newer_one(
    catalog: Catalog, shipped: dict[str, Any]
) -> None:
    store = InMemoryFlagStore()
    provider = VoxrouteProvider(load_default_flag_set())
    sync = FlagSync(store, provider, catalog)
    writer = FlagManager(store, catalog, on_publish=sync.apply)
    await writer.seed(shipped, source="f")
    await writer.patch(STT, RAMP, author="a", reason="ramp")
    assert sync.applied_version == 2
    assert not await sync.refresh()


async def test_a_stored_set_this_catalog_refuses_is_logged_and_the_old_one_serves(
    catalog: Catalog, shipped: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = InMemoryFlagStore()
    await FlagManager(store, catalog).seed(shipped, source="f")
    provider = VoxrouteProvider(load_default_flag_set())
    sync = FlagSync(store, provider, catalog)
    await sync.refresh()
    providers = {
        k: v for k, v in catalog.providers.items() if k != "assemblyai/universal-streaming"
    }
    narrow = dataclasses.replace(catalog, providers=providers)
    other = FlagSync(store, VoxrouteProvider(load_default_flag_set()), narrow)
    with caplog.at_level(logging.ERROR, logger="voxroute.flags"):
        assert not await other.refresh()
    assert "assemblyai/universal-streaming" in caplog.text
    assert other.last_error is not None


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


async def test_a_valid_edit_of_the_file_serves_at_the_next_check(
    tmp_path: Path, catalog: Catalog, shipped: dict[str, Any]
) -> None:
    path = tmp_path / "flags.json"
    _write(path, shipped)
    provider = VoxrouteProvider(load_default_flag_set())
    watcher = FlagFileWatcher(path, provider, catalog, interval_s=0.02)
    shipped["flags"][STT]["targeting"]["if"][3]["fractional"] = [
        ["deepgram-nova-3", 80], ["assemblyai-universal", 20]
    ]  # fmt: skip
    watcher.start()
    try:
        _write(path, shipped)
        await _until(lambda: "80" in _weights(provider))
    finally:
        await watcher.stop()
    assert watcher.draft.flags[STT]["targeting"]["if"][3]["fractional"][0] == [
        "deepgram-nova-3",
        80,
    ]


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ('{"flags": ', "not valid JSON"),
        (None, "flag 'stt-provider', at /variants/deepgram-nova-3: unknown provider id"),
    ],
)
async def test_a_broken_edit_is_refused_and_logged_and_the_last_good_flags_serve(
    *,
    tmp_path: Path, catalog: Catalog, shipped: dict[str, Any], caplog: pytest.LogCaptureFixture,
    broken: str | None, expected: str,
) -> None:  # fmt: skip
    path = tmp_path / "flags.json"
    _write(path, shipped)
    provider = VoxrouteProvider(load_default_flag_set())
    watcher = FlagFileWatcher(path, provider, catalog)
    before = provider.compiled
    shipped["flags"][STT]["variants"]["deepgram-nova-3"] = "nobody/unknown"
    path.write_text(broken if broken is not None else json.dumps(shipped), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="voxroute.flags"):
        assert not watcher.check()
    assert provider.compiled is before
    assert str(path) in caplog.text
    assert expected in caplog.text
    assert watcher.last_error is not None
    assert expected in watcher.last_error
    assert not watcher.check()  # logged once, not at every poll
