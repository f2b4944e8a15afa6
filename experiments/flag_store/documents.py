"""The flag store's documents: a stored flag set, a draft of the next one, canonical JSON.

A stored flag set is what the store holds at one flag-set version: each flag's
flagd document (as written, `$ref`s unexpanded), each flag's integer version,
and the set's `$evaluators` and `metadata`. `flagd()` turns it back into one
flagd flag set (https://flagd.dev/reference/flag-definitions/).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorCode, ExperimentError, FlagValidationError

SET_PARTS = ("$evaluators", "metadata")
"""The parts of a flag set besides its flags (a leading `$schema` is dropped)."""


def canonical(value: Any) -> str:
    """Compact JSON with sorted keys: equal documents give equal strings (`1` is not `true`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode(value: Any) -> str:
    """Compact JSON that keeps the author's key order (what the store keeps)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class StoredFlag:
    """One flag as stored: its key, version and flagd document."""

    key: str
    version: int
    document: Mapping[str, Any]

    def etag(self) -> str:
        return f'"{self.version}"'


@dataclass(frozen=True, slots=True)
class FlagSetDraft:
    """A flag set that may become the next version: flag documents and set parts."""

    flags: Mapping[str, Mapping[str, Any]]
    evaluators: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def flagd(self) -> dict[str, Any]:
        """The draft as one flagd flag set."""
        document: dict[str, Any] = {"flags": {k: dict(v) for k, v in self.flags.items()}}
        if self.evaluators:
            document["$evaluators"] = dict(self.evaluators)
        if self.metadata:
            document["metadata"] = dict(self.metadata)
        return document

    def set_parts(self) -> dict[str, Any]:
        return {"$evaluators": dict(self.evaluators), "metadata": dict(self.metadata)}

    def with_flag(self, key: str, document: Mapping[str, Any] | None) -> FlagSetDraft:
        """This draft with one flag replaced, added, or removed (`document` None)."""
        flags = {k: v for k, v in self.flags.items() if k != key}
        if document is not None:
            flags[key] = document
        return FlagSetDraft(flags, self.evaluators, self.metadata)


@dataclass(frozen=True, slots=True)
class StoredFlagSet:
    """The store's content at flag-set version `version` (0: nothing stored yet).

    `versions` also holds the last version of deleted flags, so a flag's versions
    never repeat.
    """

    version: int
    draft: FlagSetDraft
    versions: Mapping[str, int]
    parts_version: int = 0

    @property
    def flags(self) -> Mapping[str, Mapping[str, Any]]:
        return self.draft.flags

    def flag(self, key: str) -> StoredFlag:
        """The stored flag `key`; `ExperimentError` FLAG_NOT_FOUND when there is none."""
        document = self.draft.flags.get(key)
        if document is None:
            raise ExperimentError(
                f"no flag {key!r} in the flag set (version {self.version}); "
                f"flags: {sorted(self.draft.flags)}",
                code=ErrorCode.FLAG_NOT_FOUND,
                context={"flag_key": key, "set_version": self.version},
            )
        return StoredFlag(key, self.versions.get(key, 0), document)

    def flag_version(self, key: str) -> int:
        return self.versions.get(key, 0)


def draft_from_flagd(data: Any, *, source: str = "") -> FlagSetDraft:
    """A draft from a decoded flagd flag set; checks only the outer shape (the
    whole set is validated before anything is published)."""
    if not isinstance(data, dict):
        raise FlagValidationError("a flag set must be an object with `flags`", source=source)
    flags = data.get("flags")
    if not isinstance(flags, dict):
        raise FlagValidationError("`flags` must be an object", source=source, path="/flags")
    for key, flag in flags.items():
        if not isinstance(flag, dict):
            raise FlagValidationError("a flag must be an object", source=source, flag_key=key)
    unknown = sorted(set(data) - {"flags", "$schema", *SET_PARTS})
    if unknown:
        raise FlagValidationError(
            f"unknown flag-set properties {unknown}", source=source, path=f"/{unknown[0]}"
        )
    evaluators, metadata = data.get("$evaluators") or {}, data.get("metadata") or {}
    for name, part in (("$evaluators", evaluators), ("metadata", metadata)):
        if not isinstance(part, dict):
            raise FlagValidationError(f"{name} must be an object", source=source, path=f"/{name}")
    return FlagSetDraft(flags, evaluators, metadata)


def merge_flagd(documents: list[tuple[str, Any]]) -> dict[str, Any]:
    """One flagd flag set from several (name, decoded set) pairs, like flagd's
    multiple sources; a flag or evaluator defined twice is an error naming both."""
    merged: dict[str, Any] = {"flags": {}, "$evaluators": {}, "metadata": {}}
    origin: dict[tuple[str, str], str] = {}
    for name, data in documents:
        draft = draft_from_flagd(data, source=name)
        for part, values in (
            ("flags", draft.flags),
            ("$evaluators", draft.evaluators),
            ("metadata", draft.metadata),
        ):
            for key, value in values.items():
                if (part, key) in origin and part != "metadata":
                    raise FlagValidationError(
                        f"{part} {key!r} is defined in both {origin[(part, key)]} and {name}",
                        source=name,
                        flag_key=key if part == "flags" else "",
                    )
                origin[(part, key)] = name
                merged[part][key] = value
    return merged
