"""The flagd change that routes a segment (or everyone) to one variant of a split.

A recommendation to ship a variant, or to keep the control, comes with the
change that does it (`TargetingChange.to`), in three equivalent forms:

* `weights_patch` (whole period only): the body of `PATCH /v1/flags/{key}`
  setting the split's weights to 0/100;
* `replace_fractional_with`: what to put in place of the split's
  `fractional` node (for a segment: an `if` on the segment's attribute in
  front of the unchanged split);
* `patch`: when the flag's definition is known, a JSON Patch (RFC 6902)
  replacing the flag's whole targeting.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from experiments.flags.split_ids import split_sites

_TOP_LEVEL_VARS = frozenset({"region", "tenant_id"})


def flag_document(flag: Any) -> dict[str, Any] | None:
    """A flag's flagd definition as JSON data: a mapping as given, or a parsed
    `experiments.flags.model.FlagDefinition` (targeting with `$ref`s expanded)."""
    if flag is None or isinstance(flag, Mapping):
        return None if flag is None else dict(flag)
    return {
        "state": flag.state,
        "variants": dict(flag.variants),
        "defaultVariant": flag.default_variant,
        "targeting": copy.deepcopy(flag.targeting),
        "metadata": dict(flag.metadata),
    }


@dataclass(frozen=True, slots=True)
class TargetingChange:
    """The change of one split's routing, for the whole period (`segment` None) or a segment."""

    flag: Mapping[str, Any] | None
    flag_key: str | None
    split_id: str
    variants: Sequence[str]
    segment: tuple[str, str] | None

    def to(self, variant: str) -> dict[str, Any]:
        """Route the period (or the segment) to `variant` (see the module docstring)."""
        if self.segment is None:
            weights = {v: 100 if v == variant else 0 for v in self.variants}
            replacement: Any = variant
            weights_patch: dict[str, Any] | None = {"split": self.split_id, "weights": weights}
        else:
            replacement, weights_patch = self._segment_rule(*self.segment, variant), None
        change: dict[str, Any] = {
            "flag_key": self.flag_key,
            "split_id": self.split_id,
            "weights_patch": weights_patch,
            "replace_fractional_with": replacement,
            "patch": None,
        }
        targeting = _replaced(self.flag, self.flag_key, self.split_id, replacement)
        if targeting is not None and self.flag_key is not None:
            path = f"/flags/{_pointer(self.flag_key)}/targeting"
            change["patch"] = [{"op": "replace", "path": path, "value": targeting}]
        return change

    def _segment_rule(self, attribute: str, level: str, variant: str) -> dict[str, Any]:
        """`if <attribute> == <level> then <variant> else <the unchanged split>`."""
        name = attribute if attribute in _TOP_LEVEL_VARS else f"attributes.{attribute}"
        node = _split_node(self.flag, self.flag_key, self.split_id)
        rest = node if node is not None else {"fractional": "<the split's current node>"}
        return {"if": [{"==": [{"var": name}, level]}, variant, rest]}


def _pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")  # RFC 6901 escaping


def _sites(flag: Mapping[str, Any] | None, flag_key: str | None) -> tuple[Any, dict[int, Any]]:
    if flag is None or flag_key is None or "targeting" not in flag:
        return None, {}
    targeting = copy.deepcopy(flag["targeting"])
    return targeting, {
        node_id: site.split_id for node_id, site in split_sites(flag_key, targeting).items()
    }


def _split_node(flag: Mapping[str, Any] | None, flag_key: str | None, split_id: str) -> Any:
    targeting, sites = _sites(flag, flag_key)
    return next((node for node in _nodes(targeting) if sites.get(id(node)) == split_id), None)


def _replaced(
    flag: Mapping[str, Any] | None, flag_key: str | None, split_id: str, replacement: Any
) -> Any:
    """The flag's targeting with the split's `fractional` node replaced (None if not found)."""
    targeting, sites = _sites(flag, flag_key)
    if targeting is None:
        return None
    if sites.get(id(targeting)) == split_id:
        return replacement
    for parent in _nodes(targeting):
        for key, child in _children(parent):
            if sites.get(id(child)) == split_id:
                parent[key] = replacement
                return targeting
    return None


def _nodes(node: Any) -> list[Any]:
    found = [node] if isinstance(node, dict | list) else []
    for _, child in _children(node):
        found.extend(_nodes(child))
    return found


def _children(node: Any) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, list):
        return list(enumerate(node))
    return []
