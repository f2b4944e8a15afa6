"""Validating a whole flag set before it is published, and compiling it with the
store's versions.

A flag set is checked as a whole: flagd's rules in strict mode (parse and compile,
https://flagd.dev/reference/flag-definitions/), the provider catalog
(`check_routing_config`: provider ids, kinds, region availability of defaults) and
the splits (`fractional` weights are non-negative integers, checked while compiling,
with a positive sum). The first problem raises `FlagValidationError` naming the
flag, the path inside it and the problem.

Versions: in the store, a flag's `voxroute.flag_version` (the version that every
assignment records) is `<store version>:<content hash>`, e.g. `7:3f2a9c0b1d4e`,
so the analysis can tell the periods of a flag apart by its integer version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..catalog import Catalog
from ..errors import FlagValidationError
from ..flag_checks import FlagWarning
from ..flags import CompiledFlagSet, FlagSetDefinition, parse_flag_set
from ..flags.patch import SplitSummary, find_splits
from ..routing_config import check_routing_config


@dataclass(frozen=True, slots=True)
class ValidatedFlagSet:
    """A compiled flag set that passed every check, with the catalog's warnings."""

    compiled: CompiledFlagSet
    definition: FlagSetDefinition
    warnings: tuple[FlagWarning, ...] = ()


def store_flag_version(version: int, content_hash: str) -> str:
    """`<store version>:<content hash>`, the `voxroute.flag_version` of a stored flag."""
    return f"{version}:{content_hash}"


def with_versions(definition: FlagSetDefinition, versions: Mapping[str, int]) -> FlagSetDefinition:
    """The same flag set whose flags carry their store version (`store_flag_version`)."""
    flags = {
        key: replace(flag, version=store_flag_version(versions.get(key, 0), flag.version))
        for key, flag in definition.flags.items()
    }
    return replace(definition, flags=MappingProxyType(flags))


def splits_by_flag(definition: FlagSetDefinition) -> dict[str, list[SplitSummary]]:
    """Every flag's `fractional` splits, found in its targeting after `$ref` expansion."""
    return {key: find_splits(key, flag.targeting) for key, flag in definition.flags.items()}


def _check_split_sums(definition: FlagSetDefinition) -> None:
    for key, splits in splits_by_flag(definition).items():
        for split in splits:
            if not split.computed and sum(weight for _, weight in split.weights) <= 0:
                raise FlagValidationError(
                    f"the weights of split {split.split_id} sum to 0: at least one must be "
                    "positive",
                    source=definition.source,
                    flag_key=key,
                    path=split.path,
                )


def validate_flag_set(
    document: Any,
    catalog: Catalog,
    *,
    versions: Mapping[str, int] | None = None,
    source: str = "",
) -> ValidatedFlagSet:
    """Check a decoded flagd flag set as a whole and compile it (raises
    `FlagValidationError`). With `versions`, flags carry their store version."""
    definition = parse_flag_set(document, source=source, strict=True)
    if versions is not None:
        definition = with_versions(definition, versions)
    compiled = CompiledFlagSet.from_definition(definition)
    _check_split_sums(definition)
    config = check_routing_config(compiled, catalog)
    return ValidatedFlagSet(compiled, definition, config.warnings)
