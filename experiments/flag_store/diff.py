"""A structural diff of two JSON documents, as paths with the old and new value.

Paths are JSON pointers (https://www.rfc-editor.org/rfc/rfc6901) from the document
root; `op` is `add`, `remove` or `replace`, like JSON Patch
(https://www.rfc-editor.org/rfc/rfc6902), with the old value kept for the audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .documents import canonical

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class DiffOp:
    """One difference: `old` is None for `add`, `new` is None for `remove`."""

    op: str
    path: str
    old: Any = None
    new: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "path": self.path, "old": self.old, "new": self.new}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffOp:
        return cls(str(data["op"]), str(data["path"]), data.get("old"), data.get("new"))

    def summary(self) -> str:
        """`/state: "ENABLED" -> "DISABLED"`, short enough for a table cell."""

        def short(value: Any) -> str:
            text = canonical(value)
            return text if len(text) <= 40 else text[:37] + "..."

        if self.op == "add":
            return f"+{self.path}: {short(self.new)}"
        if self.op == "remove":
            return f"-{self.path}"
        return f"{self.path}: {short(self.old)} -> {short(self.new)}"


def _pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def json_diff(old: Any, new: Any, path: str = "") -> list[DiffOp]:
    """The differences from `old` to `new` (objects by key, arrays by index).

    `_MISSING` on one side (or None for a whole document) means absent.
    """
    if old is _MISSING or (old is None and path == "" and new is not None):
        return [DiffOp("add", path or "/", None, new)]
    if new is _MISSING or (new is None and path == "" and old is not None):
        return [DiffOp("remove", path or "/", old, None)]
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[DiffOp] = []
        for key in [*old, *(k for k in new if k not in old)]:
            ops += json_diff(
                old.get(key, _MISSING), new.get(key, _MISSING), f"{path}/{_pointer(key)}"
            )
        return ops
    if isinstance(old, list) and isinstance(new, list):
        ops = []
        for index in range(max(len(old), len(new))):
            left = old[index] if index < len(old) else _MISSING
            right = new[index] if index < len(new) else _MISSING
            ops += json_diff(left, right, f"{path}/{index}")
        return ops
    if canonical(old) == canonical(new):
        return []
    return [DiffOp("replace", path or "/", old, new)]
