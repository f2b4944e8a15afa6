"""Resolve the flags of a compiled flag set, with flagd-core 1.0.0's outcomes.

Reasons and error codes follow OpenFeature
(https://openfeature.dev/specification/types#resolution-details) the way
flagd-core assigns them: STATIC without targeting, TARGETING_MATCH, DEFAULT when
the rule gives null, DISABLED, ERROR with FLAG_NOT_FOUND / PARSE_ERROR /
TYPE_MISMATCH / GENERAL. One deliberate difference: a variant chosen by a
`fractional` split has the reason SPLIT (flagd-core says TARGETING_MATCH) and
carries its `SplitInfo`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagType, Reason

from .compile import EvalState, FlagScope, Tail, TargetingParseError, compile_targeting
from .fractional import SplitInfo, variant_name, weights_json
from .model import FlagDefinition, FlagSetDefinition, MetadataValue

FLAG_VERSION_KEY = "voxroute.flag_version"
SPLIT_ID_KEY = "voxroute.split_id"
SPLIT_WEIGHTS_KEY = "voxroute.split_weights"
BUCKET_UNIT_KEY = "voxroute.bucket_unit"
BUCKET_KEY_KEY = "voxroute.bucket_key"

Metadata = Mapping[str, MetadataValue]
_NO_METADATA: Metadata = MappingProxyType({})
_TYPES: dict[FlagType, tuple[tuple[type, ...], str]] = {
    FlagType.BOOLEAN: ((bool,), "bool"),
    FlagType.STRING: ((str,), "str"),
    FlagType.INTEGER: ((int,), "int"),
    FlagType.FLOAT: ((int, float), "float"),
    FlagType.OBJECT: ((dict, list), "dict or list"),
}


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of one flag evaluation.

    `value` is None when the caller's default applies: reason DISABLED, reason
    DEFAULT without a variant, or an error (`error_code` set, reason ERROR).
    `flag_metadata` is the flag set's metadata overlaid with the flag's, plus
    `voxroute.flag_version` and, for a split, the `voxroute.split_*` /
    `voxroute.bucket_*` keys. Values are shared: do not mutate them.
    """

    value: Any
    variant: str | None
    reason: str
    error_code: ErrorCode | None = None
    error_message: str | None = None
    flag_metadata: Metadata = field(default_factory=lambda: _NO_METADATA)
    split: SplitInfo | None = None


def _error(code: ErrorCode, message: str, metadata: Metadata = _NO_METADATA) -> Resolution:
    return Resolution(None, None, Reason.ERROR, code, message, metadata)


def _variant_error(name: str, metadata: Metadata) -> Resolution:
    return _error(ErrorCode.GENERAL, f"Resolved variant {name} not in variants config.", metadata)


def check_type(result: Resolution, flag_type: FlagType) -> Resolution:
    """flagd-core's type check: a value of another type is a TYPE_MISMATCH.

    The caller's default (DISABLED, DEFAULT without variant) is not checked; an
    integer passes as a float and is converted, a boolean is no integer.
    """
    if result.error_code is not None or result.reason == Reason.DISABLED:
        return result
    if result.reason == Reason.DEFAULT and result.variant is None:
        return result
    types, name = _TYPES[flag_type]
    value = result.value
    bool_as_int = flag_type is FlagType.INTEGER and isinstance(value, bool)
    if bool_as_int or not isinstance(value, types):
        message = f"Expected type {name} but got {type(value).__name__}"
        return _error(ErrorCode.TYPE_MISMATCH, message, result.flag_metadata)
    if flag_type is FlagType.FLOAT and isinstance(value, int):
        return replace(result, value=float(value))
    return result


def _default(definition: FlagDefinition, metadata: Metadata, reason: Reason) -> Resolution:
    """The default variant's resolution (reason DEFAULT without a value when there is none)."""
    name = definition.default_variant
    if name is None:
        return Resolution(None, None, Reason.DEFAULT, flag_metadata=metadata)
    if name not in definition.variants:
        return _variant_error(name, metadata)
    return Resolution(definition.variants[name], name, reason, flag_metadata=metadata)


@dataclass(frozen=True, slots=True)
class CompiledFlag:
    """One flag with its compiled rule and its precomputed outcomes."""

    definition: FlagDefinition
    metadata: Metadata
    rule: Tail | None
    static: Resolution
    default: Resolution
    matches: Mapping[str, Resolution]
    disabled: Resolution

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def version(self) -> str:
        return self.definition.version

    def resolve(
        self, targeting_key: str | None, attributes: Mapping[str, Any], now: int | None
    ) -> Resolution:
        if not self.definition.enabled:
            return self.disabled
        if self.rule is None:
            return self.static
        try:
            value, split = self.rule(EvalState(self.key, targeting_key, attributes, now))
        except TargetingParseError as exc:
            return _error(ErrorCode.PARSE_ERROR, f"Invalid targeting: {exc}", self.metadata)
        except Exception as exc:  # a rule failing at run time, like flagd-core: GENERAL
            return _error(ErrorCode.GENERAL, str(exc) or type(exc).__name__, self.metadata)
        if value is None:
            return self.default
        name = variant_name(value)
        match = self.matches.get(name)
        if match is None:
            return _variant_error(name, self.metadata)
        if split is None:
            return match
        metadata = self._split_meta(split)
        return Resolution(match.value, name, Reason.SPLIT, None, None, metadata, split)

    def _split_meta(self, split: SplitInfo) -> Metadata:
        metadata = dict(self.metadata)
        metadata[SPLIT_ID_KEY] = split.split_id
        metadata[SPLIT_WEIGHTS_KEY] = weights_json(split.weights)
        metadata[BUCKET_UNIT_KEY] = split.bucket_unit
        metadata[BUCKET_KEY_KEY] = split.bucket_key
        return metadata


def compile_flag(
    definition: FlagDefinition, flag_set: FlagSetDefinition, set_metadata: Metadata
) -> CompiledFlag:
    """Compile one flag of `flag_set` (raises `FlagValidationError` in strict mode)."""
    metadata = MappingProxyType(
        {**set_metadata, **definition.metadata, FLAG_VERSION_KEY: definition.version}
    )
    scope = FlagScope(
        key=definition.key,
        variants=definition.variants,
        source=flag_set.source,
        strict=flag_set.strict,
        evaluators=frozenset(flag_set.evaluators),
        ref_sites=definition.ref_sites,
    )
    matches = {
        name: Resolution(value, name, Reason.TARGETING_MATCH, flag_metadata=metadata)
        for name, value in definition.variants.items()
        if name and value is not None
    }
    return CompiledFlag(
        definition=definition,
        metadata=metadata,
        rule=compile_targeting(definition.targeting, scope),
        static=_default(definition, metadata, Reason.STATIC),
        default=_default(definition, metadata, Reason.DEFAULT),
        matches=MappingProxyType(matches),
        disabled=Resolution(None, None, Reason.DISABLED, flag_metadata=metadata),
    )


@dataclass(frozen=True, slots=True)
class CompiledFlagSet:
    """A flag set whose rules are compiled; `resolve` evaluates one flag.

    Immutable: swap a whole new set to change flags.
    """

    flags: Mapping[str, CompiledFlag]
    metadata: Metadata
    source: str = ""

    @classmethod
    def from_definition(cls, definition: FlagSetDefinition) -> CompiledFlagSet:
        """Compile every flag (raises `FlagValidationError` in strict mode)."""
        flags = {
            key: compile_flag(flag, definition, definition.metadata)
            for key, flag in definition.flags.items()
        }
        return cls(MappingProxyType(flags), definition.metadata, definition.source)

    def resolve(
        self,
        flag_key: str,
        targeting_key: str | None,
        attributes: Mapping[str, Any],
        now: int | None = None,
        *,
        flag_type: FlagType | None = None,
    ) -> Resolution:
        """Evaluate `flag_key` for a context; never raises for evaluation problems.

        `now` fixes `$flagd.timestamp` (Unix seconds); `flag_type` adds flagd-core's
        type check (and turns an integer into a float for FLOAT).
        """
        flag = self.flags.get(flag_key)
        if flag is None:
            message = f"Flag with key {flag_key} not present in flag store."
            return _error(ErrorCode.FLAG_NOT_FOUND, message)
        result = flag.resolve(targeting_key, attributes, now)
        return result if flag_type is None else check_type(result, flag_type)

    def versions(self) -> dict[str, str]:
        """Flag key -> version."""
        return {key: flag.version for key, flag in self.flags.items()}

    def changed_keys(self, previous: CompiledFlagSet | None) -> list[str]:
        """Keys added, removed or changed (by version) since `previous`, sorted.

        A change of the flag set's metadata changes every flag's resolved metadata,
        so then every key counts as changed.
        """
        if previous is None:
            return sorted(self.flags)
        old, new = previous.versions(), self.versions()
        if dict(previous.metadata) != dict(self.metadata):
            return sorted(old.keys() | new.keys())
        return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
