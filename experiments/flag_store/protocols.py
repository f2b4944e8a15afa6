"""What the flag manager and the sync task need of a flag store.

Implementations: `RedisFlagStore` (Redis, shared by every replica),
`InMemoryFlagStore` (a fake for tests) and `FileFlagStore` (read-only: the flag
file of file mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .audit import AuditEntry
from .documents import StoredFlagSet
from .plan import ChangePlan


@dataclass(frozen=True, slots=True)
class Commit:
    """Who writes and why; `action` names the operation in the audit stream."""

    action: str
    author: str
    reason: str
    change_id: str
    ts_ms: int


class ChangeFeed(Protocol):
    """Notifications of new flag-set versions (an async context manager)."""

    async def __aenter__(self) -> ChangeFeed: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def wait(self, timeout_s: float) -> bool:
        """True when a change was announced within `timeout_s`, False on timeout.
        Raises when the feed broke (the caller re-subscribes)."""
        ...


@runtime_checkable
class FlagStore(Protocol):
    """A versioned store of one flag set, with its audit stream.

    `commit` is atomic: it writes the plan only when the stored flag-set version
    is still `plan.base.version`, else writes nothing and returns None.
    Errors: `StorageUnavailableError` when the store cannot be reached;
    `ExperimentError` READ_ONLY when it takes no writes.
    """

    @property
    def name(self) -> str:
        """Where the flags live, for messages (`redis vr:{flags}`, a file path)."""
        ...

    async def read(self) -> StoredFlagSet: ...

    async def commit(self, plan: ChangePlan, commit: Commit) -> int | None:
        """The new flag-set version, or None when `plan.base` is stale."""
        ...

    async def history(self, flag_key: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        """Audit entries of one flag (or all), newest first, at most `limit`."""
        ...

    async def entry_of_version(self, flag_key: str, version: int) -> AuditEntry | None:
        """The audit entry that created version `version` of `flag_key`."""
        ...

    def changes(self) -> ChangeFeed: ...

    async def aclose(self) -> None: ...
