"""Keeping a process's provider on the store's latest flag set.

`FlagSync.run()` is a background task: it subscribes to the store's change feed
(Redis pub/sub), re-reads the store on every announcement and, as a safety net
for a lost message or a broken subscription, every `interval_s` seconds. A newer
flag-set version is validated against this process's catalog and handed to
`provider.update`, which emits PROVIDER_CONFIGURATION_CHANGED with the changed
flag keys and tells the change listeners (the router clears its provider-config
cache). An invalid stored set is logged and the last good one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..catalog import Catalog
from ..errors import ExperimentError, FlagValidationError
from ..eventlog.group_commit import UNAVAILABLE
from ..flags import VoxrouteProvider
from ..flags.checks import ValidatedFlagSet, validate_flag_set
from .protocols import ChangeFeed, FlagStore

logger = logging.getLogger("voxroute.flags")

DEFAULT_INTERVAL_S = 5.0
_WAIT_SLICE_S = 1.0
_MAX_BACKOFF_S = 2.0


def stopping_or_cancelled(stopping: bool) -> bool:
    """Stopping, or cancelled: redis-py's pub/sub can swallow a cancellation (or turn it
    into a connection error) while it waits for a message, so loops check both."""
    task = asyncio.current_task()
    return stopping or (task is not None and task.cancelling() > 0)


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel a follow loop and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class FlagSync:
    """Applies the store's newest valid flag set to `provider` (see the module docstring).

    `applied_version` is the flag-set version in use (-1 before the first).
    """

    def __init__(
        self,
        store: FlagStore,
        provider: VoxrouteProvider,
        catalog: Catalog,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.store = store
        self.provider = provider
        self.catalog = catalog
        self.interval_s = interval_s
        self.applied_version = -1
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def apply(self, validated: ValidatedFlagSet, version: int) -> list[str]:
        """Serve `validated` (flag-set `version`) unless a newer version already serves."""
        if version <= self.applied_version:
            return []
        self.applied_version = version
        self.last_error = None
        changed = self.provider.update(validated.compiled)
        if changed:
            logger.info("flags: set version %d in use; changed: %s", version, ", ".join(changed))
        return changed

    async def refresh(self) -> bool:
        """Read the store; apply its set when newer. True when a new version was applied."""
        stored = await self.store.read()
        if stored.version <= self.applied_version:
            return False
        try:
            validated = validate_flag_set(
                stored.draft.flagd(), self.catalog, versions=stored.versions, source=self.store.name
            )
        except FlagValidationError as exc:
            if self.last_error != exc.message:
                logger.error(
                    "flags: version %d in %s is refused here, still serving version %d: %s",
                    stored.version, self.store.name, self.applied_version, exc.message,
                )  # fmt: skip
            self.last_error = exc.message
            return False
        self.apply(validated, stored.version)
        return True

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="voxroute-flag-sync")
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._task)
        self._task = None

    async def run(self) -> None:
        """Follow the store until cancelled; a broken feed is re-subscribed with backoff."""
        backoff = 0.1
        while not self._stopping:
            try:
                async with self.store.changes() as feed:
                    await self.refresh()  # catch up with what the subscription missed
                    backoff = 0.1
                    await self._follow(feed)
            except (*UNAVAILABLE, ExperimentError) as exc:
                if stopping_or_cancelled(self._stopping):
                    return
                logger.warning("flags: following %s failed (%r); retrying", self.store.name, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def _follow(self, feed: ChangeFeed) -> None:
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.interval_s
        while not stopping_or_cancelled(self._stopping):
            wait = max(0.0, min(_WAIT_SLICE_S, next_poll - loop.time()))
            announced = await feed.wait(wait)
            if announced or loop.time() >= next_poll:
                await self.refresh()
                next_poll = loop.time() + self.interval_s
