"""Stable identities of `fractional` splits: split ids and bucketing units.

A split id is `<flagKey>/` + a short hash of the node's bucket expression and its
ordered variant names, so it survives reloads and weight changes (analysis compares
sessions by split id and weights), and two nodes of one flag get distinct ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def split_id(flag_key: str, bucket_expr: Any, variant_exprs: Sequence[Any]) -> str:
    """`<flagKey>/` + a short hash of the bucket expression and the ordered variant names.

    Weights are left out on purpose, so the id survives a change of weights.
    """
    canonical = json.dumps(
        [bucket_expr, list(variant_exprs)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return f"{flag_key}/{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


@dataclass(frozen=True, slots=True)
class SplitSite:
    """The static identity of one `fractional` node: its split id and bucketing unit."""

    split_id: str
    unit: str


def _fractional_parts(raw: Any) -> tuple[Any, list[Any]]:
    args = raw if isinstance(raw, list) else [raw]
    if args and not isinstance(args[0], list):
        return args[0], list(args[1:])
    return None, list(args)


def _var_names(node: Any, names: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _var_names(item, names)
    elif isinstance(node, dict):
        for op, value in node.items():
            if op == "var" and len(node) == 1:
                key = value[0] if isinstance(value, list) and value else value
                if isinstance(key, str) and key != "$flagd.flagKey" and key not in names:
                    names.append(key)
            else:
                _var_names(value, names)


def bucket_unit(bucket_expr: Any) -> str:
    """What a split buckets: `targetingKey` for the shorthand, else the variables it reads."""
    if bucket_expr is None or not isinstance(bucket_expr, str | dict):
        return "targetingKey"
    names: list[str] = []
    _var_names(bucket_expr, names)
    if names:
        return "+".join(names)
    return "constant" if isinstance(bucket_expr, str) else "expression"


def _fractional_nodes(node: Any, found: list[dict[str, Any]]) -> None:
    if isinstance(node, list):
        for item in node:
            _fractional_nodes(item, found)
    elif isinstance(node, dict):
        if len(node) == 1 and "fractional" in node:
            found.append(node)
        for value in node.values():
            _fractional_nodes(value, found)


def split_sites(flag_key: str, targeting: Any) -> dict[int, SplitSite]:
    """Split ids of every `fractional` node of a rule, keyed by node identity.

    Two nodes with the same bucket expression and variants get `-2`, `-3`, ...
    suffixes in document order, so every node of a flag has its own id.
    """
    found: list[dict[str, Any]] = []
    _fractional_nodes(targeting, found)
    seen: dict[str, int] = {}
    sites: dict[int, SplitSite] = {}
    for node in found:
        bucket_expr, buckets = _fractional_parts(node["fractional"])
        names = [b[0] if isinstance(b, list) and b else b for b in buckets]
        base = split_id(flag_key, bucket_expr, names)
        seen[base] = seen.get(base, 0) + 1
        ident = base if seen[base] == 1 else f"{base}-{seen[base]}"
        sites[id(node)] = SplitSite(ident, bucket_unit(bucket_expr))
    return sites
