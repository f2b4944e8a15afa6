"""Resolve the flags of a compiled flag set, with flagd-core 1.0.0's outcomes.

Reasons and error codes follow OpenFeature
(https://openfeature.dev/specification/types#resolution-details) the way
flagd-core assigns them: STATIC without targeting, TARGETING_MATCH, DEFAULT when
the rule gives null, DISABLED, ERROR with FLAG_NOT_FOUND / PARSE_ERROR /
TYPE_MISMATCH / GENERAL. One deliberate difference: a variant chosen by a
`fractional` split has the reason SPLIT (flagd-core says TARGETING_MATCH) and
carries its `SplitInfo`.

Every outcome that does not depend on the context (static, default, disabled,
each variant's match, each type check) is built once per flag and requested type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagType, Reason

from .compile import FlagScope, Tail, TargetingParseError, compile_targeting
from .fractional import SplitInfo, variant_name
from .keys import FLAG_VERSION_KEY
from .model import FlagDefinition, FlagSetDefinition, MetadataValue

Metadata = Mapping[str, MetadataValue]
_NO_METADATA: Metadata = MappingProxyType({})
_TYPES: dict[FlagType, tuple[tuple[type, ...], str]] = {
    FlagType.BOOLEAN: ((bool,), "bool"),
    FlagType.STRING: ((str,), "str"),
    FlagType.INTEGER: ((int,), "int"),
    FlagType.FLOAT: ((int, float), "float"),
    FlagType.OBJECT: ((dict, list), "dict or list"),
}
_SPLIT, _ERROR, _DEFAULT = Reason.SPLIT, Reason.ERROR, Reason.DEFAULT


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


def _direct_split_resolution() -> Callable[[Any, str, Metadata, SplitInfo], Resolution]:
    """A constructor of SPLIT resolutions for the evaluation hot path.

    A frozen dataclass's `__init__` goes through `object.__setattr__` per field;
    writing the slots through their descriptors costs about half as much.
    """
    new = object.__new__
    names = ("value", "variant", "reason", "error_code", "error_message", "flag_metadata", "split")
    s_value, s_variant, s_reason, s_code, s_message, s_metadata, s_split = (
        Resolution.__dict__[name].__set__ for name in names
    )

    def make(value: Any, variant: str, metadata: Metadata, split: SplitInfo) -> Resolution:
        result = new(Resolution)
        s_value(result, value)
        s_variant(result, variant)
        s_reason(result, _SPLIT)
        s_code(result, None)
        s_message(result, None)
        s_metadata(result, metadata)
        s_split(result, split)
        return result

    return make


split_resolution = _direct_split_resolution()


def _error(code: ErrorCode, message: str, metadata: Metadata = _NO_METADATA) -> Resolution:
    return Resolution(None, None, _ERROR, code, message, metadata)


def _variant_error(name: str, metadata: Metadata) -> Resolution:
    return _error(ErrorCode.GENERAL, f"Resolved variant {name} not in variants config.", metadata)


def check_type(result: Resolution, flag_type: FlagType | None) -> Resolution:
    """flagd-core's type check: a value of another type is a TYPE_MISMATCH.

    The caller's default (DISABLED, DEFAULT without variant) is not checked; an
    integer passes as a float and is converted, a boolean is no integer.
    """
    if flag_type is None or result.error_code is not None or result.variant is None:
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


@dataclass(frozen=True, slots=True)
class Outcomes:
    """The context-free resolutions of one flag for one requested type.

    `fixed` is the answer of a disabled flag or of one without targeting; `default`
    the answer when the rule gives null; `matches` the answer per variant name.
    """

    fixed: Resolution | None
    default: Resolution
    matches: Mapping[str, Resolution]


def _default(definition: FlagDefinition, metadata: Metadata, reason: Reason) -> Resolution:
    """The default variant's resolution (reason DEFAULT without a value when there is none)."""
    name = definition.default_variant
    if name is None:
        return Resolution(None, None, _DEFAULT, flag_metadata=metadata)
    if name not in definition.variants:
        return _variant_error(name, metadata)
    return Resolution(definition.variants[name], name, reason, flag_metadata=metadata)


def _outcomes(
    definition: FlagDefinition, metadata: Metadata, flag_type: FlagType | None, *, has_rule: bool
) -> Outcomes:
    fixed = None
    if not definition.enabled:
        fixed = Resolution(None, None, Reason.DISABLED, flag_metadata=metadata)
    elif not has_rule:
        fixed = check_type(_default(definition, metadata, Reason.STATIC), flag_type)
    matches = {
        name: check_type(
            Resolution(value, name, Reason.TARGETING_MATCH, None, None, metadata), flag_type
        )
        for name, value in definition.variants.items()
        if name and value is not None  # flagd-core: an empty name or a null value is no variant
    }
    default = check_type(_default(definition, metadata, _DEFAULT), flag_type)
    return Outcomes(fixed, default, MappingProxyType(matches))


@dataclass(frozen=True, slots=True)
class CompiledFlag:
    """One flag with its compiled rule and its precomputed outcomes per requested type."""

    definition: FlagDefinition
    metadata: Metadata
    rule: Tail | None
    outcomes: Mapping[FlagType | None, Outcomes]

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def version(self) -> str:
        return self.definition.version


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
        metadata=metadata,
    )
    rule = compile_targeting(definition.targeting, scope)
    types: list[FlagType | None] = [None, *FlagType]
    outcomes = {
        flag_type: _outcomes(definition, metadata, flag_type, has_rule=rule is not None)
        for flag_type in types
    }
    return CompiledFlag(definition, metadata, rule, MappingProxyType(outcomes))


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

        `now` fixes `$flagd.timestamp` (Unix seconds, default: the clock); `flag_type`
        adds flagd-core's type check (and turns an integer into a float for FLOAT).
        """
        flag = self.flags.get(flag_key)
        if flag is None:
            message = f"Flag with key {flag_key} not present in flag store."
            return _error(ErrorCode.FLAG_NOT_FOUND, message)
        outcomes = flag.outcomes.get(flag_type)
        if outcomes is None:
            return _error(ErrorCode.GENERAL, f"unknown flag type {flag_type!r}", flag.metadata)
        fixed, rule = outcomes.fixed, flag.rule
        if fixed is not None:
            return fixed
        if rule is None:  # not reached: a flag without a rule has a fixed outcome
            return outcomes.default
        try:
            value, split, metadata = rule([targeting_key, attributes, now, flag_key, None, None])
        except TargetingParseError as exc:
            return _error(ErrorCode.PARSE_ERROR, f"Invalid targeting: {exc}", flag.metadata)
        except Exception as exc:  # a rule failing at run time, like flagd-core: GENERAL
            return _error(ErrorCode.GENERAL, str(exc) or type(exc).__name__, flag.metadata)
        if value is None:
            return outcomes.default
        name = value if type(value) is str else variant_name(value)
        match = outcomes.matches.get(name)
        if match is None:
            return _variant_error(name, flag.metadata)
        if split is None or metadata is None or match.error_code is not None:
            return match
        return split_resolution(match.value, name, metadata, split)

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
