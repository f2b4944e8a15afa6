"""Strict validation of targeting rules, applied while they compile.

The rules follow the flagd targeting schema (https://flagd.dev/schema/v0/targeting.json)
and the flag definition reference (https://flagd.dev/reference/flag-definitions/):
known operators and their argument counts, `$ref` to a declared evaluator, only
`$flagd.flagKey` / `$flagd.timestamp` under `$flagd`, `fractional` buckets of
`[variant, weight]` with non-negative integer weights, `sem_ver` operators, and
constant results that name a declared variant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import FlagValidationError
from ..fractional import MAX_WEIGHT_SUM, variant_name
from .flagd_ops import SEMVER_OPERATORS
from .operators import ARITY

_FLAGD_CONTEXT = ("$flagd.flagKey", "$flagd.timestamp")


def _count(bounds: tuple[int, int | None]) -> str:
    low, high = bounds
    if high is None:
        return f"at least {low} argument{'s' if low != 1 else ''}"
    if low == high:
        return f"exactly {low} argument{'s' if low != 1 else ''}"
    return f"{low} to {high} arguments"


class Checker:
    """Raises `FlagValidationError` naming the file, the flag and the path of a bad rule."""

    def __init__(
        self, flag_key: str, variants: Mapping[str, Any], source: str, ref_sites: Mapping[str, str]
    ) -> None:
        self.flag_key = flag_key
        self.variants = variants
        self.source = source
        self.ref_sites = ref_sites

    def fail(self, path: str, problem: str) -> FlagValidationError:
        return FlagValidationError(
            problem, source=self.source, flag_key=self.flag_key, path=self._where(path)
        )

    def _where(self, path: str) -> str:
        """The path, noting the `$ref` it was expanded from when it lies inside one."""
        notes = [
            f"$ref {name!r} at {site}"
            for site, name in self.ref_sites.items()
            if path == site or path.startswith(site + "/")
        ]
        return f"{path} (inside {', '.join(notes)})" if notes else path

    def arity(self, op: str, args: list[Any], base: str) -> None:
        bounds = ARITY.get(op)
        if bounds is None:
            return
        low, high = bounds
        if len(args) < low or (high is not None and len(args) > high):
            raise self.fail(base, f"{op!r} takes {_count(bounds)}, got {len(args)}")
        if op == "sem_ver":
            self._sem_ver(args, base)

    def _sem_ver(self, args: list[Any], base: str) -> None:
        operator = args[1]
        if not isinstance(operator, dict) and operator not in SEMVER_OPERATORS:
            raise self.fail(
                f"{base}/1",
                f"unknown sem_ver operator {operator!r}; one of {sorted(SEMVER_OPERATORS)}",
            )

    def unknown(
        self, op: str, base: str, evaluators: Iterable[str], arg: Any
    ) -> FlagValidationError:
        if op != "$ref":
            return self.fail(base, f"unknown operator {op!r}")
        if arg in set(evaluators):
            return self.fail(
                base,
                f"$ref {arg!r} is not expanded here: flagd expands $evaluators in declaration "
                "order, so a $ref inside an evaluator must name one declared after it",
            )
        return self.fail(base, f"$ref to missing evaluator {arg!r}")

    def variant(self, value: Any, path: str) -> None:
        """A constant result of the rule must name a variant (null means the default)."""
        if value is None:
            return
        name = variant_name(value)
        if name not in self.variants:
            raise self.fail(
                path,
                f"the rule returns {value!r}, which is not a variant of the flag "
                f"(variants: {sorted(self.variants)})",
            )

    def var_key(self, key: Any, base: str) -> None:
        if isinstance(key, bool) or not (key is None or isinstance(key, str | int)):
            raise self.fail(base, f"var takes a path string, got {key!r}")
        if isinstance(key, str) and key.startswith("$flagd.") and key not in _FLAGD_CONTEXT:
            raise self.fail(
                base, f"unknown flagd context value {key!r}; flagd sets only {list(_FLAGD_CONTEXT)}"
            )

    def fractional(self, args: list[Any], base: str) -> None:
        keyed = bool(args) and not isinstance(args[0], list)
        if keyed and not isinstance(args[0], str | dict):
            raise self.fail(
                f"{base}/0", f"the bucketing key must be a string or a rule, got {args[0]!r}"
            )
        buckets = args[1:] if keyed else args
        if not buckets:
            raise self.fail(base, "fractional needs at least one [variant, weight] bucket")
        total = 0
        for index, item in enumerate(buckets, start=1 if keyed else 0):
            total += self._bucket_weight(item, f"{base}/{index}")
        if total > MAX_WEIGHT_SUM:
            raise self.fail(base, f"the weights sum to {total}, more than {MAX_WEIGHT_SUM}")

    def _bucket_weight(self, item: Any, path: str) -> int:
        """The literal weight of one bucket (0 for a computed weight)."""
        if not isinstance(item, list) or not 1 <= len(item) <= 2:
            raise self.fail(path, f"a bucket must be [variant] or [variant, weight], got {item!r}")
        if len(item) == 1:
            return 1
        weight = item[1]
        if isinstance(weight, dict):
            return 0
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise self.fail(f"{path}/1", f"a weight must be a non-negative integer, got {weight!r}")
        return weight

    def split_variants(self, args: list[Any], base: str) -> None:
        """The literal variant names of a split that decides the variant must be variants."""
        keyed = bool(args) and not isinstance(args[0], list)
        start = 1 if keyed else 0
        for index, item in enumerate(args[start:], start=start):
            if isinstance(item, list) and item and not isinstance(item[0], dict | list):
                self.variant(item[0], f"{base}/{index}/0")
