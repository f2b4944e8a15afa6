"""Flag management: read, change, push, roll back and audit the live flag set.

Every change is planned on the stored set it read (`plan_change`: the whole next
set is validated, diffed and given its warnings), then written by the store only
if nothing changed in between; when something did, the change is planned again
on the new set (a caller's `If-Match` version is checked each time, so a stale
edit is a 409 and never overwrites another one). A dry run stops after planning.
A published set is handed to `on_publish` at once, so the writing process serves
it before it answers; the other processes learn of it through the store's feed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..catalog import Catalog
from ..errors import ErrorCode, ExperimentError
from ..flags.checks import ValidatedFlagSet
from ..flags.patch import FlagPatch, apply_patch
from .audit import AuditEntry
from .documents import FlagSetDraft, StoredFlag, StoredFlagSet, draft_from_flagd
from .plan import ChangePlan, plan_change
from .protocols import Commit, FlagStore

Publish = Callable[[ValidatedFlagSet, int], object]
Edit = Callable[[StoredFlagSet], FlagSetDraft]
ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What a write did (or, for a dry run, would do)."""

    action: str
    dry_run: bool
    published: bool
    set_version: int
    plan: ChangePlan

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "action": self.action,
            "dry_run": self.dry_run,
            "published": self.published,
            "set_version": self.set_version,
            "base_set_version": plan.base.version,
            "changes": [change.to_dict() for change in plan.changes],
            "set_parts_diff": [op.to_dict() for op in plan.set_parts_diff],
            "valid": plan.error is None,
            "error": None if plan.error is None else plan.error.to_dict(),
            "warnings": [w for c in plan.changes for w in c.warnings] + list(plan.warnings),
            "reason_required": plan.needs_reason(),
        }


def conflict(key: str, expected: int, current: int, exists: bool) -> ExperimentError:
    state = f"at version {current}" if exists else f"absent (last version {current})"
    return ExperimentError(
        f"flag {key!r} is {state}; the change was based on version {expected}: read it "
        "again and reapply the change",
        code=ErrorCode.CONFLICT,
        context={"flag_key": key, "expected_version": expected, "current_version": current},
    )


def check_version(stored: StoredFlagSet, key: str, expected: int | None) -> None:
    """Raise CONFLICT unless flag `key` is at `expected` (None: any version)."""
    current, exists = stored.flag_version(key), key in stored.flags
    if expected is not None and (expected != current or not exists):
        raise conflict(key, expected, current, exists)


class FlagManager:
    """The operations behind `/v1/flags` and `voxroute flags` (see the module docstring)."""

    def __init__(
        self,
        store: FlagStore,
        catalog: Catalog,
        *,
        on_publish: Publish | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self._on_publish = on_publish
        self._clock = clock

    async def snapshot(self) -> StoredFlagSet:
        return await self.store.read()

    async def flag(self, key: str) -> StoredFlag:
        return (await self.store.read()).flag(key)

    async def history(self, key: str, *, limit: int = 100) -> list[AuditEntry]:
        """The audit entries of flag `key`, newest first. A deleted flag keeps its
        history (rollback restores it from there); FLAG_NOT_FOUND for a key that is
        neither in the set nor in the audit."""
        entries = await self.store.history(key, limit=limit)
        if not entries:
            (await self.store.read()).flag(key)
        return entries

    async def put(
        self, key: str, document: Mapping[str, Any], *, if_match: int | None, author: str,
        reason: str = "", dry_run: bool = False,
    ) -> ChangeResult:  # fmt: skip
        """Replace flag `key` (at version `if_match`), or create it (`if_match` None)."""

        def edit(stored: StoredFlagSet) -> FlagSetDraft:
            if if_match is None and key in stored.flags:
                raise conflict(key, 0, stored.flag_version(key), True)
            check_version(stored, key, if_match)
            return stored.draft.with_flag(key, document)

        return await self._write("put", edit, author, reason, dry_run)

    async def patch(
        self, key: str, patch: FlagPatch, *, if_match: int | None = None, author: str,
        reason: str = "", dry_run: bool = False,
    ) -> ChangeResult:  # fmt: skip
        """Change state, default variant and split weights of flag `key`."""

        def edit(stored: StoredFlagSet) -> FlagSetDraft:
            current = stored.flag(key)
            check_version(stored, key, if_match)
            return stored.draft.with_flag(key, apply_patch(key, current.document, patch))

        return await self._write("patch", edit, author, reason, dry_run)

    async def delete(
        self, key: str, *, if_match: int | None = None, author: str, reason: str = "",
        dry_run: bool = False,
    ) -> ChangeResult:  # fmt: skip
        def edit(stored: StoredFlagSet) -> FlagSetDraft:
            stored.flag(key)
            check_version(stored, key, if_match)
            return stored.draft.with_flag(key, None)

        return await self._write("delete", edit, author, reason, dry_run)

    async def push(
        self, document: Any, *, if_match: int | None = None, author: str, reason: str = "",
        dry_run: bool = False, action: str = "push",
    ) -> ChangeResult:  # fmt: skip
        """Make the flagd flag set `document` the live set (flags absent from it go)."""
        draft = draft_from_flagd(document)

        def edit(stored: StoredFlagSet) -> FlagSetDraft:
            if if_match is not None and stored.version != if_match:
                raise ExperimentError(
                    f"the flag set is at version {stored.version}, the push was based on "
                    f"version {if_match}",
                    code=ErrorCode.CONFLICT,
                    context={"expected_version": if_match, "current_version": stored.version},
                )
            return draft

        return await self._write(action, edit, author, reason, dry_run)

    async def rollback(
        self, key: str, to_version: int, *, if_match: int | None = None, author: str,
        reason: str = "", dry_run: bool = False,
    ) -> ChangeResult:  # fmt: skip
        """Make flag `key` what it was at `to_version` again, as a new version."""
        entry = await self.store.entry_of_version(key, to_version)
        if entry is None:
            raise ExperimentError(
                f"flag {key!r} has no version {to_version} in the audit of {self.store.name}",
                code=ErrorCode.FLAG_NOT_FOUND,
                context={"flag_key": key, "to_version": to_version},
            )

        def edit(stored: StoredFlagSet) -> FlagSetDraft:
            check_version(stored, key, if_match)
            return stored.draft.with_flag(key, entry.document)

        return await self._write("rollback", edit, author, reason, dry_run)

    async def seed(self, document: Any, *, source: str) -> bool:
        """Store `document` as version 1 when the store is empty; False when it was not."""
        stored = await self.store.read()
        if stored.version != 0:
            return False
        plan = plan_change(stored, draft_from_flagd(document, source=source), self.catalog)
        if plan.error is not None:
            raise plan.error
        version = await self.store.commit(
            plan, self._commit("seed", "voxroute", f"seeded from {source}")
        )
        if version is None:
            return False
        self._publish(plan, version)
        return True

    async def _write(
        self, action: str, edit: Edit, author: str, reason: str, dry_run: bool
    ) -> ChangeResult:
        for _ in range(ATTEMPTS):
            stored = await self.store.read()
            plan = plan_change(stored, edit(stored), self.catalog)
            if dry_run or plan.empty:
                return ChangeResult(action, dry_run, False, stored.version, plan)
            if plan.error is not None:
                raise plan.error
            _check_reason(plan, reason)
            version = await self.store.commit(plan, self._commit(action, author, reason))
            if version is not None:
                self._publish(plan, version)
                return ChangeResult(action, False, True, version, plan)
        raise ExperimentError(
            f"the flag set kept changing during {ATTEMPTS} attempts; try again",
            code=ErrorCode.CONFLICT,
        )

    def _commit(self, action: str, author: str, reason: str) -> Commit:
        return Commit(action, author, reason, uuid.uuid4().hex, int(self._clock() * 1000))

    def _publish(self, plan: ChangePlan, version: int) -> None:
        if self._on_publish is not None and plan.validated is not None:
            self._on_publish(plan.validated, version)


def _check_reason(plan: ChangePlan, reason: str) -> None:
    flags = plan.needs_reason()
    if flags and not reason.strip():
        raise ExperimentError(
            f"a reason is required: {', '.join(repr(f) for f in flags)} "
            f"{'has' if len(flags) == 1 else 'have'} a running split (the audit keeps why "
            "its cohorts changed)",
            code=ErrorCode.INVALID_INPUT,
            context={"flags": flags, "field": "reason"},
        )
