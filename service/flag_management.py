"""Flag management in a running process: the store, the manager and the task that
keeps the provider current, in Redis mode or file mode.

- `redis`: the live flag set is in Redis (seeded from `flags_path` when the store is
  empty); writes go through `/v1/flags`; `FlagSync` follows the store (pub/sub plus
  a re-read every `flag_sync_interval_s`).
- `file`: `flags_path` is the live flag set; `FlagFileWatcher` serves a valid edit
  within `flag_file_poll_s` and refuses a broken one; `/v1/flags` reads only.
- `auto` (the default): `redis` when an admin key is configured, else `file`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from experiments.errors import ExperimentError, StorageUnavailableError
from experiments.flag_store import (
    FileFlagStore,
    FlagFileWatcher,
    FlagManager,
    FlagSync,
    RedisFlagStore,
    load_flag_file,
)
from experiments.flags import CompiledFlagSet, VoxrouteProvider
from experiments.routing_config import RoutingConfig

from .settings import Settings

logger = logging.getLogger("voxroute.flags")


def flag_store_mode(settings: Settings) -> str:
    """`redis` or `file` (see the module docstring)."""
    if settings.flag_store != "auto":
        return settings.flag_store
    has_admin = settings.admin_token is not None or settings.admin_keys is not None
    return "redis" if has_admin else "file"


def open_redis_flag_store(settings: Settings, redis_url: str) -> RedisFlagStore:
    """The Redis flag store of a process with `settings` on `redis_url`."""
    return RedisFlagStore.from_url(
        redis_url, prefix=settings.key_prefix, socket_timeout_s=settings.redis_timeout_s
    )


def _refused(store: RedisFlagStore, sync: FlagSync) -> str:
    return f"the flags in {store.name} are refused here: {sync.last_error}"


def current_flag_set(settings: Settings, redis_url: str, config: RoutingConfig) -> CompiledFlagSet:
    """The flag set a server with `settings` on `redis_url` serves now, for a process
    that does not follow the store (the `analyze` CLI; no running event loop).

    file mode: `config.flag_set` (the file). redis mode: the store's newest set,
    read and validated against `config.catalog` by `FlagSync.refresh`, as a server
    does; while the store is still empty, the file it would be seeded from.
    Raises `ExperimentError` when the stored set is refused (a server would not
    start on it) and `StorageUnavailableError` when the store cannot be read.
    """
    if flag_store_mode(settings) == "file":
        return config.flag_set
    return asyncio.run(_stored_flag_set(settings, redis_url, config))


async def _stored_flag_set(
    settings: Settings, redis_url: str, config: RoutingConfig
) -> CompiledFlagSet:
    store = open_redis_flag_store(settings, redis_url)
    provider = VoxrouteProvider(config.flag_set)
    sync = FlagSync(store, provider, config.catalog)
    sync.applied_version = 0  # an empty store (version 0): the file it would be seeded from
    try:
        await sync.refresh()
    finally:
        await store.aclose()
    if sync.last_error is not None:
        raise ExperimentError(_refused(store, sync), context={"store": store.name})
    return provider.compiled


@dataclass
class FlagManagement:
    mode: str
    manager: FlagManager
    sync: FlagSync | None = None
    watcher: FlagFileWatcher | None = None

    @classmethod
    async def start(
        cls, settings: Settings, redis_url: str, provider: VoxrouteProvider, config: RoutingConfig
    ) -> FlagManagement:
        if flag_store_mode(settings) == "file":
            return cls._file(settings, provider, config)
        return await cls._redis(settings, redis_url, provider, config)

    @classmethod
    def _file(
        cls, settings: Settings, provider: VoxrouteProvider, config: RoutingConfig
    ) -> FlagManagement:
        watcher = FlagFileWatcher(
            settings.flags_path, provider, config.catalog, interval_s=settings.flag_file_poll_s
        )
        store = FileFlagStore(str(settings.flags_path), lambda: watcher.draft)
        watcher.start()
        return cls("file", FlagManager(store, config.catalog), watcher=watcher)

    @classmethod
    async def _redis(
        cls, settings: Settings, url: str, provider: VoxrouteProvider, config: RoutingConfig
    ) -> FlagManagement:
        store = open_redis_flag_store(settings, url)
        sync = FlagSync(store, provider, config.catalog, interval_s=settings.flag_sync_interval_s)
        manager = FlagManager(store, config.catalog, on_publish=sync.apply)
        try:
            draft, _ = load_flag_file(settings.flags_path, config.catalog)
            if await manager.seed(draft.flagd(), source=str(settings.flags_path)):
                logger.info("flags: seeded %s from %s", store.name, settings.flags_path)
            await sync.refresh()
        except StorageUnavailableError as exc:
            logger.warning(
                "flags: %s; serving %s until the store answers", exc, settings.flags_path
            )
        if sync.last_error is not None:
            raise RuntimeError(_refused(store, sync))
        sync.start()
        return cls("redis", manager, sync=sync)

    async def stop(self) -> None:
        if self.sync is not None:
            await self.sync.stop()
        if self.watcher is not None:
            await self.watcher.stop()
        await self.manager.store.aclose()

    def status(self) -> dict[str, Any]:
        """For /readyz: where the flags come from and which version serves."""
        status: dict[str, Any] = {"mode": self.mode, "store": self.manager.store.name}
        if self.sync is not None:
            status["set_version"] = self.sync.applied_version
            status["last_error"] = self.sync.last_error
        if self.watcher is not None:
            status["last_error"] = self.watcher.last_error
        return status
