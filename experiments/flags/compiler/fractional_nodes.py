"""Compiled `fractional` nodes: split identity, bucketing closures and split tails.

https://flagd.dev/reference/custom-operations/fractional-operation/

A node evaluates every argument like flagd-core does; at the root of a rule,
constant buckets are parsed once into a table. Its tail form (used where its
result becomes the variant) also returns the split's `SplitTemplate` and the
bucketing key, from which the evaluator gives the `SplitInfo` and the flag metadata
with the `voxroute.split_*` / `voxroute.bucket_*` keys. For the common shapes
(the shorthand, or a computed bucketing key, with constant buckets) the tail is
one closure that reads, hashes and picks inline, and returns the split's template
(built once) with the bucketing key instead of building metadata per evaluation.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..fractional import (
    FractionTable,
    Hit,
    SplitTemplate,
    bucket,
    evaluate,
    murmur3,
    parse_table,
    picker,
    shorthand_key,
    split_template,
)
from ..split_ids import SplitSite
from .jsonlogic import fresh

Fn = Callable[[Any], Any]
Bucketer = Callable[[Any], Hit | None]
TailResult = tuple[Any, SplitTemplate | None, str | None]
Tail = Callable[[Any], TailResult]
"""A rule in tail form: (value, the split that chose it, the bucketing key it hashed).

The split's `SplitInfo` and flag metadata are its template's plus the bucketing key;
the evaluator adds the key lazily (see `evaluator.split_resolution`).
"""
NOTHING: TailResult = (None, None, None)
SHORTHAND_UNIT = "targetingKey"


def _has_list_variant(buckets: Sequence[Any]) -> bool:
    return any(isinstance(b, list) and b and isinstance(b[0], list) for b in buckets)


def _generic_bucketer(fns: list[Fn], *, root: bool, flag_key: str) -> Bucketer:
    if root:

        def run_root(s: Any) -> Hit | None:
            values = [f(s) for f in fns]
            return evaluate(values, lambda: shorthand_key(flag_key, s[0]))

        return run_root

    def run_item(d: Any) -> Hit | None:
        values = [f(d) for f in fns]
        return evaluate(
            values,
            lambda: shorthand_key(d.get("$flagd", {}).get("flagKey", ""), d.get("targetingKey")),
        )

    return run_item


def _shorthand_bucketer(buckets: list[Any], flag_key: str) -> Bucketer:
    table = parse_table(buckets)
    if table is None:

        def hash_only(s: Any) -> Hit | None:
            key = shorthand_key(flag_key, s[0])
            return bucket(key, None, shorthand=True) if key else None

        return hash_only
    pick = picker(table)

    def run(s: Any) -> Hit | None:
        targeting_key = s[0]
        if not targeting_key:
            return None
        key = flag_key + targeting_key
        return pick(murmur3(key, 0, False)), key, table, True

    return run


def _keyed_bucketer(first: Fn, buckets: list[Any], flag_key: str) -> Bucketer:
    table = parse_table(buckets)
    pick = None if table is None else picker(table)

    def run(s: Any) -> Hit | None:
        key = first(s)
        if not isinstance(key, str):
            values = [key, *fresh(buckets)]
            return evaluate(values, lambda: shorthand_key(flag_key, s[0]))
        if not key:
            return None
        hash_value = murmur3(key, 0, False)
        if table is None or pick is None:
            return None
        return pick(hash_value), key, table, False

    return run


def bucketer(
    fns: list[Fn], constants: list[tuple[bool, Any]], *, root: bool, flag_key: str
) -> Bucketer:
    """The bucketing closure of one `fractional` node.

    `constants` holds (is_constant, value) per argument. At the root, constant
    buckets are parsed once; otherwise every argument is evaluated on each call.
    """
    if not fns:
        return lambda _s: None
    rest = [value for _, value in constants[1:]]
    static = root and all(is_const for is_const, _ in constants[1:])
    if not static or _has_list_variant(rest):
        return _generic_bucketer(fns, root=root, flag_key=flag_key)
    first_const, first = constants[0]
    if not first_const:
        return _keyed_bucketer(fns[0], rest, flag_key)
    if isinstance(first, str) or _has_list_variant([first]):
        return _generic_bucketer(fns, root=root, flag_key=flag_key)
    return _shorthand_bucketer([first, *rest], flag_key)


class _SplitTemplates:
    """The template of one split (without the bucket key), built once per table and unit."""

    def __init__(self, base: Mapping[str, Any], split: str) -> None:
        self.base, self.split = base, split
        self.last: tuple[FractionTable, str, SplitTemplate] | None = None

    def get(self, table: FractionTable, unit: str) -> SplitTemplate:
        last = self.last
        if last is None or last[0] is not table or last[1] != unit:
            last = (table, unit, split_template(self.base, self.split, table.weights, unit))
            self.last = last
        return last[2]


def _from_hit(hit: Hit | None, site: SplitSite, templates: _SplitTemplates) -> TailResult:
    if hit is None or hit[0] is None:
        return NOTHING
    variant, key, table, shorthand = hit
    unit = SHORTHAND_UNIT if shorthand else site.unit
    return variant, templates.get(table, unit), key


def _shorthand_tail(
    table: FractionTable, flag_key: str, site: SplitSite, base: Mapping[str, Any]
) -> Tail:
    """`fractional` of constant buckets bucketing on flag key + targeting key."""
    variants, ends, total = table.variants, table.ends, table.total
    template = split_template(base, site.split_id, table.weights, SHORTHAND_UNIT)
    count = len(variants)

    def tail(s: Any) -> TailResult:
        targeting_key = s[0]
        if not targeting_key:
            return NOTHING
        key = flag_key + targeting_key
        index = bisect_right(ends, (murmur3(key, 0, False) * total) >> 32)
        variant = variants[index] if index < count else None
        if variant is None:
            return NOTHING
        return variant, template, key

    return tail


def _keyed_tail(
    first: Fn,
    table: FractionTable,
    buckets: list[Any],
    flag_key: str,
    *,
    site: SplitSite,
    base: Mapping[str, Any],
) -> Tail:
    """`fractional` of constant buckets with a computed bucketing key."""
    variants, ends, total = table.variants, table.ends, table.total
    template = split_template(base, site.split_id, table.weights, site.unit)
    count = len(variants)
    fallback = _SplitTemplates(base, site.split_id)

    def tail(s: Any) -> TailResult:
        key = first(s)
        if not isinstance(key, str):  # not a key: flagd-core takes it as the first bucket
            hit = evaluate([key, *fresh(buckets)], lambda: shorthand_key(flag_key, s[0]))
            return _from_hit(hit, site, fallback)
        if not key:
            return NOTHING
        index = bisect_right(ends, (murmur3(key, 0, False) * total) >> 32)
        variant = variants[index] if index < count else None
        if variant is None:
            return NOTHING
        return variant, template, key

    return tail


def _static_tail(
    fns: list[Fn],
    constants: list[tuple[bool, Any]],
    flag_key: str,
    site: SplitSite,
    base: Mapping[str, Any],
) -> Tail | None:
    """The fused tail of a root node with constant, valid buckets; None for other shapes."""
    if not fns or not all(is_const for is_const, _ in constants[1:]):
        return None
    first_const, first = constants[0]
    rest = [value for _, value in constants[1:]]
    if not first_const:
        table = parse_table(rest)
        if table is None or _has_list_variant(rest):
            return None
        return _keyed_tail(fns[0], table, rest, flag_key, site=site, base=base)
    buckets = [first, *rest]
    if isinstance(first, str) or _has_list_variant(buckets):
        return None
    table = parse_table(buckets)
    return None if table is None else _shorthand_tail(table, flag_key, site, base)


def fractional(
    fns: list[Fn],
    constants: list[tuple[bool, Any]],
    site: SplitSite,
    *,
    root: bool,
    flag_key: str,
    metadata: Mapping[str, Any],
) -> tuple[Fn, Tail]:
    """The plain closure (the variant) and the tail closure of one `fractional` node.

    `constants` holds (is_constant, value) per argument.
    """
    run = bucketer(fns, constants, root=root, flag_key=flag_key)

    def plain(s: Any) -> Any:
        hit = run(s)
        return None if hit is None else hit[0]

    fused = _static_tail(fns, constants, flag_key, site, metadata) if root else None
    if fused is not None:
        return plain, fused
    templates = _SplitTemplates(metadata, site.split_id)
    return plain, lambda s: _from_hit(run(s), site, templates)
