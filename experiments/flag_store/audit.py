"""The audit stream of the flag store: one entry per changed flag per write.

Stream `<prefix>:{flags}:audit`; each entry's fields (strings; JSON where noted):

| field         | content                                                             |
|---------------|---------------------------------------------------------------------|
| `type`, `v`   | `flag_change`, schema version `1`                                   |
| `flag`        | the flag key; empty for the set's `$evaluators` / `metadata`        |
| `action`      | `seed`, `put`, `patch`, `delete`, `push` or `rollback`              |
| `author`      | the name of the API key that made the change                        |
| `reason`      | why (required for a flag with a running split)                      |
| `ts_ms`       | when, Unix milliseconds (the stream id also holds the time)         |
| `change_id`   | shared by the entries of one write                                  |
| `set_version` | the flag-set version this write created                             |
| `old_version`, `new_version` | the flag's version before and after (0: absent)      |
| `doc`         | the flag's new flagd document, JSON (empty: deleted)                |
| `diff`        | JSON list of `{op, path, old, new}` (see `diff`)                    |
| `old_weights`, `weights` | JSON `{split id: {variant: weight}}` before and after   |
| `warnings`    | JSON list of strings (safety rails: weight change, disable, ...)    |

`weight_changes(entries)` gives the moments a split's weights changed, which is
what the analysis needs to cut a split's sessions into periods.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .diff import DiffOp

AUDIT_TYPE = "flag_change"
AUDIT_SCHEMA_VERSION = "1"
Weights = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit stream entry, decoded (`document` None: the change deleted the flag)."""

    entry_id: str
    flag_key: str
    action: str
    author: str
    reason: str
    ts_ms: int
    change_id: str
    set_version: int
    old_version: int
    new_version: int
    document: Mapping[str, Any] | None
    diff: tuple[DiffOp, ...]
    old_weights: Weights
    weights: Weights
    warnings: tuple[str, ...]

    @classmethod
    def decode(cls, entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> AuditEntry:
        """Decode a stream entry (bytes field names and values, as redis-py returns them)."""
        text = {k.decode(): v.decode() for k, v in fields.items()}
        doc = text.get("doc", "")
        return cls(
            entry_id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            flag_key=text.get("flag", ""),
            action=text.get("action", ""),
            author=text.get("author", ""),
            reason=text.get("reason", ""),
            ts_ms=int(text.get("ts_ms", "0")),
            change_id=text.get("change_id", ""),
            set_version=int(text.get("set_version", "0")),
            old_version=int(text.get("old_version", "0")),
            new_version=int(text.get("new_version", "0")),
            document=json.loads(doc) if doc else None,
            diff=tuple(DiffOp.from_dict(op) for op in json.loads(text.get("diff") or "[]")),
            old_weights=json.loads(text.get("old_weights") or "{}"),
            weights=json.loads(text.get("weights") or "{}"),
            warnings=tuple(json.loads(text.get("warnings") or "[]")),
        )

    def to_dict(self, *, with_document: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.entry_id,
            "flag_key": self.flag_key,
            "action": self.action,
            "author": self.author,
            "reason": self.reason,
            "ts_ms": self.ts_ms,
            "change_id": self.change_id,
            "set_version": self.set_version,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "diff": [op.to_dict() for op in self.diff],
            "old_weights": self.old_weights,
            "weights": self.weights,
            "warnings": list(self.warnings),
        }
        if with_document:
            body["document"] = self.document
        return body


@dataclass(frozen=True, slots=True)
class WeightChange:
    """A split's weights changed (or the split appeared or went away) at `ts_ms`.

    `old_weights` is empty when the split starts here, `new_weights` empty when it
    ends (the flag was deleted, or the split removed from its rule); `version` is the
    flag's store version from then on, the integer before `:` in the
    `flag_version` of its assignments.
    """

    flag_key: str
    split_id: str
    ts_ms: int
    entry_id: str
    version: int
    old_weights: Mapping[str, int]
    new_weights: Mapping[str, int]
    author: str
    reason: str


def weight_changes(entries: Iterable[AuditEntry]) -> list[WeightChange]:
    """Every change of split weights in `entries`, in their order.

    A flag disabled or enabled keeps its split's weights but the split stops or
    resumes: read `action`/`diff` of the entries for that (`state` paths).
    """
    changes = []
    for entry in entries:
        for split_id in [
            *entry.old_weights,
            *(s for s in entry.weights if s not in entry.old_weights),
        ]:
            old = dict(entry.old_weights.get(split_id, {}))
            new = dict(entry.weights.get(split_id, {}))
            if old != new:
                changes.append(
                    WeightChange(
                        entry.flag_key, split_id, entry.ts_ms, entry.entry_id,
                        entry.new_version, old, new, entry.author, entry.reason,
                    )
                )  # fmt: skip
    return changes
