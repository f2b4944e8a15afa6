"""Checks of a whole flag set: flagd's rules, the provider catalog, the splits.

A flag set is checked as a whole: flagd's rules in strict mode (parse and compile,
https://flagd.dev/reference/flag-definitions/; the targeting rules are checked while
they compile, `compiler/rule_checks.py`), the provider catalog
(`check_flags_against_catalog`: provider ids, kinds, region availability of defaults)
and the splits (`fractional` weights are non-negative integers, checked while compiling,
with a positive sum). The first problem raises `FlagValidationError` naming the
flag, the path inside it and the problem.

The catalog checks cover what only the catalog knows: that routing flags name
existing providers of the right kind, and that a flag's default variant works in
every region. A routing flag that is absent is a warning, not an error.

Versions: in the store, a flag's `voxroute.flag_version` (the version that every
assignment records) is `<store version>:<content hash>`, e.g. `7:3f2a9c0b1d4e`,
so the analysis can tell the periods of a flag apart by its integer version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..catalog import Catalog, Mode, ProviderKind
from ..errors import FlagValidationError
from .evaluator import CompiledFlagSet
from .model import FlagDefinition, FlagSetDefinition, parse_flag_set
from .patch import SplitSummary, find_splits


@dataclass(frozen=True, slots=True)
class FlagWarning:
    """A finding that does not stop the flags from loading."""

    flag_key: str
    problem: str


def check_flags_against_catalog(
    flags: Mapping[str, FlagDefinition], catalog: Catalog, *, source: str = ""
) -> list[FlagWarning]:
    """Raise `FlagValidationError` for the first routing flag that the catalog
    cannot serve; return warnings (a routing flag that is absent) otherwise."""
    warnings = []
    for part, flag_key in catalog.routing.items():
        flag = flags.get(flag_key)
        if flag is None:
            warnings.append(FlagWarning(flag_key, f"no flag decides {part}: the default is used"))
            continue
        if part == "mode":
            _check_mode_flag(flag_key, flag, source)
        else:
            _check_provider_flag(flag_key, flag, ProviderKind(part), catalog, source)
    return warnings


def _check_mode_flag(flag_key: str, flag: FlagDefinition, source: str) -> None:
    modes = {mode.value for mode in Mode}
    for name, value in flag.variants.items():
        if value not in modes:
            raise FlagValidationError(
                f"variant value {value!r} is not a mode; expected one of {sorted(modes)}",
                source=source,
                flag_key=flag_key,
                path=f"/variants/{name}",
            )


def _check_provider_flag(
    flag_key: str, flag: FlagDefinition, kind: ProviderKind, catalog: Catalog, source: str
) -> None:
    for name, value in flag.variants.items():
        path = f"/variants/{name}"
        spec = catalog.providers.get(value) if isinstance(value, str) else None
        if spec is None:
            raise FlagValidationError(
                f"unknown provider id {value!r}: not in the catalog {catalog.source}",
                source=source,
                flag_key=flag_key,
                path=path,
            )
        if spec.kind is not kind:
            raise FlagValidationError(
                f"provider {value!r} is a {spec.kind} provider; this flag routes {kind}",
                source=source,
                flag_key=flag_key,
                path=path,
            )
    _check_default_everywhere(flag_key, flag, catalog, source)


def _check_default_everywhere(
    flag_key: str, flag: FlagDefinition, catalog: Catalog, source: str
) -> None:
    default = flag.default_variant
    if default is None:
        return
    provider_id = flag.variants.get(default)
    missing = [r for r in catalog.regions if not catalog.is_available(str(provider_id), r)]
    if missing:
        raise FlagValidationError(
            f"default variant {default!r} ({provider_id}) is not available in region(s) {missing}",
            source=source,
            flag_key=flag_key,
            path="/defaultVariant",
        )


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
    definitions = {key: flag.definition for key, flag in compiled.flags.items()}
    warnings = check_flags_against_catalog(definitions, catalog, source=compiled.source)
    return ValidatedFlagSet(compiled, definition, tuple(warnings))
