"""Find the `fractional` splits of a flag and edit a flag document in place of a person.

`find_splits(flag_key, targeting)` lists every `fractional` node of a rule with its
JSON-pointer path inside the flag, its stable split id (`split_ids`), its bucketing
unit and its literal weights. `apply_patch(flag_key, document, patch)` returns a new
flag document with the patch's state, default variant and split weights; the result
is validated by the caller as part of the whole flag set.

Weights: https://flagd.dev/reference/custom-operations/fractional-operation/ (a bucket
is `[variant, weight]`, or `[variant]` for weight 1).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FlagValidationError
from .fractional import variant_name
from .split_ids import split_sites


@dataclass(frozen=True, slots=True)
class SplitSummary:
    """One `fractional` node: where it is, its id, what it buckets and its weights.

    `weights` holds the literal weights in declaration order (`[variant]` counts 1);
    `computed` is True when some weight or variant is a rule, not a literal.
    """

    path: str
    split_id: str
    bucket_unit: str
    weights: tuple[tuple[str, int], ...]
    computed: bool = False

    def weights_dict(self) -> dict[str, int]:
        return dict(self.weights)


@dataclass(frozen=True, slots=True)
class FlagPatch:
    """What `PATCH /v1/flags/{key}` may change; None leaves a part as it is.

    `weights` sets the weight of each named variant in one split (variants not
    named keep their weight; a flag variant absent from the split is appended);
    `split` names that split by id or path when the flag has more than one.
    """

    state: str | None = None
    default_variant: str | None = None
    weights: Mapping[str, int] | None = None
    split: str | None = None

    @property
    def empty(self) -> bool:
        return self.state is None and self.default_variant is None and self.weights is None


def _pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _nodes(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every `fractional` node under `node` with its path, in document order."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _nodes(item, f"{path}/{index}")
    elif isinstance(node, dict):
        if len(node) == 1 and "fractional" in node:
            yield path, node
        for key, value in node.items():
            yield from _nodes(value, f"{path}/{_pointer(str(key))}")


def _buckets(node: Mapping[str, Any]) -> tuple[int, list[Any]]:
    """The index of the first bucket in the node's arguments, and the arguments."""
    raw = node["fractional"]
    args = raw if isinstance(raw, list) else [raw]
    keyed = bool(args) and not isinstance(args[0], list)
    return (1 if keyed else 0), args


def _literal_weights(args: list[Any], start: int) -> tuple[tuple[tuple[str, int], ...], bool]:
    weights: list[tuple[str, int]] = []
    computed = False
    for item in args[start:]:
        if not isinstance(item, list) or not item:
            computed = True
            continue
        name, weight = item[0], (item[1] if len(item) > 1 else 1)
        if isinstance(name, dict | list) or isinstance(weight, dict | list | bool):
            computed = True
            name = name if isinstance(name, str) else json.dumps(name, sort_keys=True)
        weights.append((variant_name(name), weight if isinstance(weight, int) else 0))
    return tuple(weights), computed


def find_splits(flag_key: str, targeting: Any) -> list[SplitSummary]:
    """Every `fractional` split of a rule (paths start at `/targeting`)."""
    sites = split_sites(flag_key, targeting)
    found = []
    for path, node in _nodes(targeting, "/targeting"):
        start, args = _buckets(node)
        weights, computed = _literal_weights(args, start)
        site = sites[id(node)]
        found.append(SplitSummary(path, site.split_id, site.unit, weights, computed))
    return found


def has_running_split(document: Mapping[str, Any], expanded_targeting: Any = None) -> bool:
    """An enabled flag with a `fractional` in its targeting (after `$ref` expansion if given)."""
    targeting = document.get("targeting") if expanded_targeting is None else expanded_targeting
    return document.get("state") == "ENABLED" and any(True for _ in _nodes(targeting, ""))


def apply_patch(flag_key: str, document: Mapping[str, Any], patch: FlagPatch) -> dict[str, Any]:
    """A copy of the flag `document` with `patch` applied (raises `FlagValidationError`)."""
    result = copy.deepcopy(dict(document))
    if patch.state is not None:
        result["state"] = patch.state
    if patch.default_variant is not None:
        result["defaultVariant"] = patch.default_variant
    if patch.weights is not None:
        _set_weights(flag_key, result, patch.weights, patch.split)
    return result


def _fail(flag_key: str, path: str, problem: str) -> FlagValidationError:
    return FlagValidationError(problem, flag_key=flag_key, path=path)


def _choose_node(
    flag_key: str, document: Mapping[str, Any], selector: str | None
) -> tuple[str, Any]:
    targeting = document.get("targeting")
    nodes = list(_nodes(targeting, "/targeting"))
    if not nodes:
        raise _fail(
            flag_key,
            "/targeting",
            "the flag has no fractional split in its own targeting (a split inside a shared "
            "$evaluators rule changes with the whole flag set: push it)",
        )
    if selector is None and len(nodes) == 1:
        return nodes[0]
    sites = split_sites(flag_key, targeting)
    for path, node in nodes:
        if selector in (path, sites[id(node)].split_id):
            return path, node
    choices = ", ".join(f"{sites[id(node)].split_id} at {path}" for path, node in nodes)
    problem = f"name the split to change (by id or path): {choices}"
    if selector is not None:
        problem = f"no split {selector!r} in this flag; the splits are: {choices}"
    raise _fail(flag_key, "/targeting", problem)


def _set_weights(
    flag_key: str, document: dict[str, Any], weights: Mapping[str, int], selector: str | None
) -> None:
    path, node = _choose_node(flag_key, document, selector)
    start, args = _buckets(node)
    variants = document.get("variants") or {}
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise _fail(flag_key, path, f"weight of {name!r} must be a non-negative integer")
        if name not in variants:
            raise _fail(flag_key, "/variants", f"{name!r} is not a variant ({sorted(variants)})")
        places = [
            i for i, b in enumerate(args[start:], start) if isinstance(b, list) and b[:1] == [name]
        ]
        if len(places) > 1:
            raise _fail(flag_key, path, f"{name!r} has several buckets here; edit the flag (PUT)")
        if places:
            args[places[0]] = [name, weight]
        else:
            args.append([name, weight])
    node["fractional"] = args
