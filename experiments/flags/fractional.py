"""flagd's `fractional` operator: bucketing, weight tables and stable split ids.

Bucketing is flagd's current integer algorithm
(https://flagd.dev/reference/custom-operations/fractional-operation/):
MurmurHash3 x86 32-bit, seed 0, unsigned, over the UTF-8 bytes of the bucketing
key; `bucket = (hash * totalWeight) >> 32` over cumulative integer weights.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import mmh3

MAX_WEIGHT_SUM = 2_147_483_647  # MaxInt32, flagd's limit on the sum of weights


@dataclass(frozen=True, slots=True)
class SplitInfo:
    """Which fractional split chose a variant, and for which bucketing key.

    `split_id` is stable across reloads and weight changes of the same split;
    `weights` are the effective (clamped) weights per variant in declaration order;
    `bucket_unit` names what is bucketed (`targetingKey`, `tenant_id`, ...);
    `bucket_key` is the exact string that was hashed.
    """

    split_id: str
    weights: tuple[tuple[str, int], ...]
    bucket_unit: str
    bucket_key: str

    def weights_json(self) -> str:
        """The weights as a compact JSON object, variant -> weight, in declaration order."""
        return weights_json(self.weights)


@lru_cache(maxsize=4096)
def weights_json(weights: tuple[tuple[str, int], ...]) -> str:
    """`{"a":50,"b":50}`: compact JSON of variant weights, in declaration order."""
    return json.dumps(dict(weights), separators=(",", ":"), ensure_ascii=False)


def bucket_hash(key: str) -> int:
    """MurmurHash3 x86 32-bit, seed 0, unsigned, of the UTF-8 bytes of `key`."""
    return int(mmh3.hash(key, 0, signed=False))


def variant_name(value: Any) -> str:
    """The variant key flagd derives from a targeting result (booleans as `true`/`false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class FractionTable:
    """Parsed `[variant, weight]` buckets: variants, cumulative ends, total weight."""

    variants: tuple[Any, ...]
    ends: tuple[int, ...]
    total: int
    weights: tuple[tuple[str, int], ...]

    def pick(self, hash_value: int) -> Any:
        """The variant whose range holds `(hash * total) >> 32`, None when no range does."""
        bucket = (hash_value * self.total) >> 32
        index = bisect_right(self.ends, bucket)
        return self.variants[index] if index < len(self.variants) else None


def _weight(arg: Sequence[Any]) -> int:
    if len(arg) == 1:
        return 1
    weight = arg[1]
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise ValueError("Fractional weight value isn't of type 'int'")
    return max(0, weight)  # negative weights clamp to 0, like flagd-core


def parse_table(args: Sequence[Any]) -> FractionTable | None:
    """The table of evaluated bucket arguments; None when flagd-core would return null
    for every key (a malformed bucket, or a total weight above MaxInt32)."""
    variants: list[Any] = []
    ends: list[int] = []
    merged: dict[str, int] = {}
    total = 0
    for arg in args:
        if not isinstance(arg, list | tuple) or not arg or len(arg) > 2:
            return None
        try:
            weight = _weight(arg)
        except ValueError:
            return None
        total += weight
        variants.append(arg[0])
        ends.append(total)
        name = variant_name(arg[0])
        merged[name] = merged.get(name, 0) + weight
    if total > MAX_WEIGHT_SUM:
        return None
    return FractionTable(tuple(variants), tuple(ends), total, tuple(merged.items()))


def shorthand_key(seed: Any, targeting_key: Any) -> Any:
    """The bucketing key of the shorthand form: flag key + targeting key, None without one."""
    if not targeting_key:
        return None
    return seed + targeting_key


@dataclass(frozen=True, slots=True)
class Bucketed:
    """The outcome of one fractional evaluation that reached the bucketing step."""

    variant: Any
    bucket_key: str
    table: FractionTable
    shorthand: bool


def bucket(key: str, table: FractionTable | None, *, shorthand: bool) -> Bucketed | None:
    """Hash `key` (first, as flagd-core does) and pick its bucket; None for a null result."""
    hash_value = bucket_hash(key)
    if table is None:
        return None
    return Bucketed(table.pick(hash_value), key, table, shorthand)


def evaluate(values: Sequence[Any], shorthand: Callable[[], Any]) -> Bucketed | None:
    """flagd-core's `fractional` over evaluated arguments; None when it returns null.

    A string first argument is the bucketing key; anything else means the shorthand
    form (`shorthand()` gives flag key + targeting key) with every argument a bucket.
    """
    if not values:
        return None
    if isinstance(values[0], str):
        key: Any = values[0]
        buckets = values[1:]
    else:
        key = shorthand()
        buckets = values
    if not key:
        return None
    return bucket(key, parse_table(buckets), shorthand=not isinstance(values[0], str))


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
