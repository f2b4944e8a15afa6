"""`InMemoryFlagStore`, a fake `FlagStore` for tests, and `FileFlagStore`, the
read-only store of file mode."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable

from ..errors import ErrorCode, ExperimentError
from .audit import AuditEntry
from .documents import FlagSetDraft, StoredFlagSet, encode
from .plan import ChangePlan, FlagChange
from .protocols import Commit


def _copy(stored: StoredFlagSet) -> StoredFlagSet:
    """A copy sharing nothing mutable, through JSON as in Redis."""
    draft = stored.draft
    copied = FlagSetDraft(
        json.loads(encode(draft.flags)),
        json.loads(encode(draft.evaluators)),
        json.loads(encode(draft.metadata)),
    )
    return StoredFlagSet(stored.version, copied, dict(stored.versions), stored.parts_version)


class _EventFeed:
    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    async def __aenter__(self) -> _EventFeed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def wait(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True


class InMemoryFlagStore:
    """The semantics of `RedisFlagStore` in one process (versions, audit, feed)."""

    def __init__(self) -> None:
        self.stored = StoredFlagSet(0, FlagSetDraft({}), {})
        self.entries: list[AuditEntry] = []
        self._feeds: list[asyncio.Event] = []
        self._ids = itertools.count(1)

    @property
    def name(self) -> str:
        return "memory"

    async def read(self) -> StoredFlagSet:
        return _copy(self.stored)  # like Redis: the reader owns what it reads

    async def commit(self, plan: ChangePlan, commit: Commit) -> int | None:
        if plan.base.version != self.stored.version:
            return None
        version = self.stored.version + 1
        parts_version = self.stored.parts_version
        if plan.set_parts is not None:
            parts_version += 1
            self._audit(commit, version, "", (parts_version - 1, parts_version), plan.set_parts)
        versions = dict(self.stored.versions)
        for change in plan.changes:
            versions[change.key] = change.old_version + 1
            versions_ = (change.old_version, change.new_version)
            self._audit(commit, version, change.key, versions_, change.new_document, change=change)
        self.stored = _copy(StoredFlagSet(version, plan.draft, versions, parts_version))
        for event in self._feeds:
            event.set()
        return version

    def _audit(
        self, commit: Commit, set_version: int, key: str, versions: tuple[int, int],
        document: object, *, change: FlagChange | None = None,
    ) -> None:  # fmt: skip
        old, new = versions
        fields = {
            "flag": key, "action": commit.action, "author": commit.author,
            "reason": commit.reason, "ts_ms": str(commit.ts_ms), "change_id": commit.change_id,
            "set_version": str(set_version), "old_version": str(old), "new_version": str(new),
            "doc": "" if document is None else encode(document),
        }  # fmt: skip
        if change is not None:
            fields["diff"] = encode([op.to_dict() for op in change.diff])
            fields["old_weights"] = encode(change.old_weights)
            fields["weights"] = encode(change.weights)
            fields["warnings"] = encode(list(change.warnings))
        raw = {k.encode(): v.encode() for k, v in fields.items()}
        self.entries.append(AuditEntry.decode(f"{next(self._ids)}-0", raw))

    async def history(self, flag_key: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        found = [e for e in reversed(self.entries) if flag_key is None or e.flag_key == flag_key]
        return found[:limit]

    async def entry_of_version(self, flag_key: str, version: int) -> AuditEntry | None:
        for entry in reversed(self.entries):
            if entry.flag_key == flag_key and entry.new_version == version:
                return entry
        return None

    def changes(self) -> _EventFeed:
        event = asyncio.Event()
        self._feeds.append(event)
        return _EventFeed(event)

    async def aclose(self) -> None:
        return None


class FileFlagStore:
    """File mode's store: reads the last good flag file, takes no writes, has no audit.

    `current` returns the draft the file watcher last accepted; versions are 0.
    """

    def __init__(self, path: str, current: Callable[[], FlagSetDraft]) -> None:
        self._path = path
        self._current = current

    @property
    def name(self) -> str:
        return f"file {self._path}"

    async def read(self) -> StoredFlagSet:
        return StoredFlagSet(0, self._current(), {})

    async def commit(self, plan: ChangePlan, commit: Commit) -> int | None:
        raise ExperimentError(
            f"flags are read from the file {self._path} (VOXROUTE_FLAG_STORE=file): edit the "
            "file, or set VOXROUTE_FLAG_STORE=redis to manage flags through the API",
            code=ErrorCode.READ_ONLY,
            context={"store": self.name},
        )

    async def history(self, flag_key: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        return []

    async def entry_of_version(self, flag_key: str, version: int) -> AuditEntry | None:
        return None

    def changes(self) -> _EventFeed:
        return _EventFeed(asyncio.Event())

    async def aclose(self) -> None:
        return None
