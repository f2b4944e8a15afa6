"""From the stored flag set and a draft of the next one to a checked change plan.

`plan_change` finds the flags that change (their document, or their rule through
a changed `$evaluators` entry), predicts their new versions, validates the whole
draft with those versions (`validate_flag_set`), diffs every changed flag and
adds the safety-rail warnings: a running split's weights change, a flag is
disabled or removed, a variant is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog import Catalog
from ..errors import FlagValidationError
from ..flags import FlagSetDefinition, parse_flag_set
from ..flags.checks import ValidatedFlagSet, splits_by_flag, validate_flag_set
from ..flags.patch import has_running_split
from .diff import DiffOp, json_diff
from .documents import FlagSetDraft, StoredFlagSet, canonical

SplitWeights = dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class FlagChange:
    """One flag's change: versions, documents (None: absent), diff, weights, warnings."""

    key: str
    old_version: int
    new_version: int
    old_document: Mapping[str, Any] | None
    new_document: Mapping[str, Any] | None
    diff: tuple[DiffOp, ...]
    old_weights: SplitWeights
    weights: SplitWeights
    warnings: tuple[str, ...]
    running_split: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "flag_key": self.key,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "diff": [op.to_dict() for op in self.diff],
            "old_weights": self.old_weights,
            "weights": self.weights,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class ChangePlan:
    """What a write would do to the stored set `base`.

    `validated` is the compiled next set (None when `error` says why it is invalid);
    `set_parts` holds the next `$evaluators`/`metadata` when they change.
    """

    base: StoredFlagSet
    draft: FlagSetDraft
    changes: tuple[FlagChange, ...]
    set_parts: dict[str, Any] | None
    set_parts_diff: tuple[DiffOp, ...] = ()
    validated: ValidatedFlagSet | None = None
    error: FlagValidationError | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.changes and self.set_parts is None

    @property
    def new_set_version(self) -> int:
        return self.base.version if self.empty else self.base.version + 1

    def needs_reason(self) -> list[str]:
        """The changed flags that have (or get) a running split."""
        return [change.key for change in self.changes if change.running_split]


def _parsed(document: dict[str, Any]) -> FlagSetDefinition | None:
    try:
        return parse_flag_set(document, strict=False)
    except FlagValidationError:
        return None


def _weights(definition: FlagSetDefinition | None) -> dict[str, SplitWeights]:
    if definition is None:
        return {}
    return {
        key: {split.split_id: split.weights_dict() for split in splits}
        for key, splits in splits_by_flag(definition).items()
    }


@dataclass(frozen=True, slots=True)
class _Sides:
    """The stored set and the draft, parsed (None when a side does not parse)."""

    base: StoredFlagSet
    draft: FlagSetDraft
    old: FlagSetDefinition | None
    new: FlagSetDefinition | None
    catalog: Catalog
    old_weights: dict[str, SplitWeights] = field(default_factory=dict)
    new_weights: dict[str, SplitWeights] = field(default_factory=dict)

    def targeting(self, key: str, *, new: bool) -> Any:
        definition = self.new if new else self.old
        if definition is None or key not in definition.flags:
            return None
        return definition.flags[key].targeting

    def changed_keys(self) -> list[str]:
        """Flags whose document changed, or whose rule changed through `$evaluators`."""
        base, draft, old, new = self.base.flags, self.draft.flags, self.old, self.new
        keys = []
        for key in [*base, *(k for k in draft if k not in base)]:
            before, after = base.get(key), draft.get(key)
            raw = (before is None) != (after is None) or canonical(before) != canonical(after)
            expanded = (
                old is not None and new is not None and key in old.flags and key in new.flags
                and old.flags[key].version != new.flags[key].version
            )  # fmt: skip
            if raw or expanded:
                keys.append(key)
        return keys


def _weights_text(weights: dict[str, int]) -> str:
    return " ".join(f"{variant}={weight}" for variant, weight in weights.items())


def _warnings(key: str, sides: _Sides, *, running: bool) -> list[str]:
    before, after = sides.base.flags.get(key), sides.draft.flags.get(key)
    old_weights, weights = sides.old_weights.get(key, {}), sides.new_weights.get(key, {})
    warnings = []
    routed = [part for part, flag in sides.catalog.routing.items() if flag == key]
    if running and before is not None and after is not None:
        for split_id, old in old_weights.items():
            new = weights.get(split_id)
            if new is not None and new != old:
                warnings.append(
                    f"split {split_id} changes weights {_weights_text(old)} -> "
                    f"{_weights_text(new)}: its analysis is cut into periods (before and after "
                    "this version); compare sessions within one period"
                )
    if before is not None and after is not None:
        if before.get("state") == "ENABLED" and after.get("state") == "DISABLED":
            what = f" ({', '.join(routed)})" if routed else ""
            warnings.append(f"disabled: new sessions get the catalog defaults{what} at once")
        removed = sorted(set(before.get("variants") or {}) - set(after.get("variants") or {}))
        if removed:
            warnings.append(
                f"variants removed: {removed}; sessions already pinned to them keep their route"
            )
    if after is None and routed:
        warnings.append(f"removed: new sessions get the catalog defaults for {', '.join(routed)}")
    return warnings


def _flag_change(key: str, sides: _Sides) -> FlagChange:
    before, after = sides.base.flags.get(key), sides.draft.flags.get(key)
    running = (
        before is not None and has_running_split(before, sides.targeting(key, new=False))
    ) or (after is not None and has_running_split(after, sides.targeting(key, new=True)))
    diff = json_diff(before, after)
    warnings = _warnings(key, sides, running=running)
    if not diff:
        warnings.append("changed through a shared $evaluators rule")
    old_version = sides.base.flag_version(key)
    return FlagChange(
        key, old_version, old_version + 1, before, after, tuple(diff),
        sides.old_weights.get(key, {}), sides.new_weights.get(key, {}), tuple(warnings), running,
    )  # fmt: skip


def plan_change(
    base: StoredFlagSet, draft: FlagSetDraft, catalog: Catalog, *, source: str = ""
) -> ChangePlan:
    """Compare, validate and diff; a validation problem is kept in `error`, not raised."""
    old, new = _parsed(base.draft.flagd()), _parsed(draft.flagd())
    sides = _Sides(base, draft, old, new, catalog, _weights(old), _weights(new))
    changes = tuple(_flag_change(key, sides) for key in sides.changed_keys())
    parts_diff = tuple(json_diff(base.draft.set_parts(), draft.set_parts()))
    set_parts = draft.set_parts() if parts_diff else None
    versions = dict(base.versions)
    versions.update({change.key: change.new_version for change in changes})
    try:
        validated = validate_flag_set(draft.flagd(), catalog, versions=versions, source=source)
    except FlagValidationError as exc:
        return ChangePlan(base, draft, changes, set_parts, parts_diff, None, exc)
    warnings = tuple(f"flag {w.flag_key!r}: {w.problem}" for w in validated.warnings)
    return ChangePlan(base, draft, changes, set_parts, parts_diff, validated, None, warnings)
