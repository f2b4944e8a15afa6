"""flagd's `fractional` operator: bucketing, weight tables and stable split ids.

Bucketing is flagd's current integer algorithm
(https://flagd.dev/reference/custom-operations/fractional-operation/):
MurmurHash3 x86 32-bit, seed 0, unsigned, over the UTF-8 bytes of the bucketing
key; `bucket = (hash * totalWeight) >> 32` over cumulative integer weights.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import mmh3

from .keys import BUCKET_KEY_KEY, BUCKET_UNIT_KEY, SPLIT_ID_KEY, SPLIT_WEIGHTS_KEY

MAX_WEIGHT_SUM = 2_147_483_647  # MaxInt32, flagd's limit on the sum of weights

murmur3 = mmh3.hash
"""`murmur3(key, seed, signed)`: mmh3's MurmurHash3 x86 32-bit, positional arguments."""


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


def _direct_split_info() -> Callable[[str, tuple[tuple[str, int], ...], str, str], SplitInfo]:
    """A SplitInfo constructor for the evaluation hot path.

    A frozen dataclass's `__init__` goes through `object.__setattr__` per field;
    writing the slots through their descriptors costs about half as much.
    """
    new = object.__new__
    set_id, set_weights, set_unit, set_key = (
        SplitInfo.__dict__[name].__set__
        for name in ("split_id", "weights", "bucket_unit", "bucket_key")
    )

    def make(split_id: str, weights: tuple[tuple[str, int], ...], unit: str, key: str) -> SplitInfo:
        info = new(SplitInfo)
        set_id(info, split_id)
        set_weights(info, weights)
        set_unit(info, unit)
        set_key(info, key)
        return info

    return make


new_split_info = _direct_split_info()


@lru_cache(maxsize=4096)
def weights_json(weights: tuple[tuple[str, int], ...]) -> str:
    """`{"a":50,"b":50}`: compact JSON of variant weights, in declaration order."""
    return json.dumps(dict(weights), separators=(",", ":"), ensure_ascii=False)


def split_metadata(
    base: Mapping[str, Any], split_id: str, weights: tuple[tuple[str, int], ...], unit: str
) -> dict[str, Any]:
    """Flag metadata plus the split keys that do not depend on the bucketing key."""
    metadata = dict(base)
    metadata[SPLIT_ID_KEY] = split_id
    metadata[SPLIT_WEIGHTS_KEY] = weights_json(weights)
    metadata[BUCKET_UNIT_KEY] = unit
    return metadata


@dataclass(frozen=True, slots=True)
class SplitTemplate:
    """What a split reports that does not depend on the bucketing key, built once per
    (`fractional` node, weights, unit): the split's identity and the flag metadata with
    the `voxroute.split_*` / `voxroute.bucket_unit` keys (read-only, shared)."""

    split_id: str
    weights: tuple[tuple[str, int], ...]
    unit: str
    metadata: Mapping[str, Any]

    def info(self, key: str) -> SplitInfo:
        """The `SplitInfo` of this split for bucketing key `key`."""
        return new_split_info(self.split_id, self.weights, self.unit, key)


def split_template(
    base: Mapping[str, Any], split_id: str, weights: tuple[tuple[str, int], ...], unit: str
) -> SplitTemplate:
    """The template of one split over flag metadata `base`."""
    metadata = MappingProxyType(split_metadata(base, split_id, weights, unit))
    return SplitTemplate(split_id, weights, unit, metadata)


class KeyedMetadata(Mapping[str, Any]):
    """Read-only flag metadata of one split evaluation: the split's shared metadata
    plus `voxroute.bucket_key`, without copying the shared part.

    Equal to (and iterates like) the dict `{**base, BUCKET_KEY_KEY: key}`.
    """

    __slots__ = ("_base", "_key")

    def __init__(self, base: Mapping[str, Any], key: str) -> None:
        self._base, self._key = base, key

    def __getitem__(self, name: str) -> Any:
        if name == BUCKET_KEY_KEY:
            return self._key
        return self._base[name]

    def get(self, name: str, default: Any = None) -> Any:
        if name == BUCKET_KEY_KEY:
            return self._key
        return self._base.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name == BUCKET_KEY_KEY or name in self._base

    def __iter__(self) -> Iterator[str]:
        for name in self._base:
            if name != BUCKET_KEY_KEY:
                yield name
        yield BUCKET_KEY_KEY

    def __len__(self) -> int:
        return len(self._base) + (BUCKET_KEY_KEY not in self._base)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def bucket_hash(key: str) -> int:
    """MurmurHash3 x86 32-bit, seed 0, unsigned, of the UTF-8 bytes of `key`."""
    return int(murmur3(key, 0, False))


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


def picker(table: FractionTable) -> Callable[[int], Any]:
    """`table.pick` as a closure over locals, for the hot path of a split."""
    variants, ends, total, count = table.variants, table.ends, table.total, len(table.variants)
    if count == 2:
        (first, second), (first_end, second_end) = variants, ends

        def pick_of_two(hash_value: int) -> Any:
            bucket = (hash_value * total) >> 32
            if bucket < first_end:
                return first
            return second if bucket < second_end else None

        return pick_of_two

    def pick(hash_value: int) -> Any:
        index = bisect_right(ends, (hash_value * total) >> 32)
        return variants[index] if index < count else None

    return pick


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


Hit = tuple[Any, str, FractionTable, bool]
"""A fractional evaluation that reached bucketing: (variant, bucket key, table, shorthand)."""


def bucket(key: str, table: FractionTable | None, *, shorthand: bool) -> Hit | None:
    """Hash `key` (first, as flagd-core does) and pick its bucket; None for a null result."""
    hash_value = murmur3(key, 0, False)
    if table is None:
        return None
    return table.pick(hash_value), key, table, shorthand


def evaluate(values: Sequence[Any], shorthand: Callable[[], Any]) -> Hit | None:
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
