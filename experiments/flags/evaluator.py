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
from dataclasses import FrozenInstanceError, dataclass, field, replace
from types import MappingProxyType
from typing import Any

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagType, Reason

from .compiler.rules import FlagScope, Tail, TargetingParseError, compile_targeting
from .fractional import KeyedMetadata, SplitInfo, SplitTemplate, variant_name
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


_FIELDS = ("value", "variant", "reason", "error_code", "error_message", "flag_metadata", "split")


class _SplitResolution(Resolution):
    """A SPLIT resolution built with one allocation on the evaluation hot path.

    It holds the variant's TARGETING_MATCH resolution (value and variant, already
    type-checked), the split's template (built once per split) and the bucketing
    key; `flag_metadata` (the template's metadata plus `voxroute.bucket_key`) and
    `split` are derived on access. Callers see a `Resolution` with the same fields
    and values as `Resolution(value, variant, SPLIT, None, None, metadata, split)`,
    equal to it, as frozen.
    """

    __slots__ = ("_key", "_match", "_template")
    _match: Resolution
    _template: SplitTemplate
    _key: str

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """`dataclasses.replace` and direct calls give a plain `Resolution`."""
        return Resolution(*args, **kwargs)

    @property
    def value(self) -> Any:
        return self._match.value

    @property
    def variant(self) -> str | None:
        return self._match.variant

    @property
    def reason(self) -> str:
        return _SPLIT

    @property
    def error_code(self) -> ErrorCode | None:
        return None

    @property
    def error_message(self) -> str | None:
        return None

    @property
    def flag_metadata(self) -> Metadata:
        return KeyedMetadata(self._template.metadata, self._key)

    @property
    def split(self) -> SplitInfo | None:
        return self._template.info(self._key)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resolution):
            return self._fields() == tuple(getattr(other, name) for name in _FIELDS)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"Resolution({fields})"

    def __reduce__(self) -> tuple[Any, ...]:  # a plain Resolution, its metadata as a dict
        return (Resolution, (*self._fields()[:5], dict(self.flag_metadata), self.split))


def _direct_split_resolution() -> Callable[[Resolution, SplitTemplate, str], Resolution]:
    """The constructor of SPLIT resolutions for the evaluation hot path: one object,
    three slots written through their descriptors (no dataclass `__init__`)."""
    new = object.__new__
    s_match, s_template, s_key = (
        _SplitResolution.__dict__[name].__set__ for name in ("_match", "_template", "_key")
    )

    def make(match: Resolution, template: SplitTemplate, key: str) -> Resolution:
        result = new(_SplitResolution)
        s_match(result, match)
        s_template(result, template)
        s_key(result, key)
        return result

    return make


split_resolution = _direct_split_resolution()
"""`split_resolution(match, template, key)`: the SPLIT resolution of the variant whose
TARGETING_MATCH resolution is `match`, chosen by the split `template` for bucketing key `key`."""


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


_Hot = tuple[Resolution | None, Resolution, dict[str, Resolution], Tail | None, Metadata]
"""One flag's outcomes for one requested type: fixed, default, matches, rule, metadata."""


@dataclass(frozen=True, slots=True)
class CompiledFlagSet:
    """A flag set whose rules are compiled; `resolve` evaluates one flag.

    Immutable: swap a whole new set to change flags.
    """

    flags: Mapping[str, CompiledFlag]
    metadata: Metadata
    source: str = ""
    _hot: dict[str, dict[FlagType | None, _Hot]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # What `resolve` reads, per flag key and requested type, in plain dicts and one
        # tuple: a mappingproxy's `get` and the attribute reads cost more on the hot path.
        hot = {
            key: {
                flag_type: (o.fixed, o.default, dict(o.matches), flag.rule, flag.metadata)
                for flag_type, o in flag.outcomes.items()
            }
            for key, flag in self.flags.items()
        }
        object.__setattr__(self, "_hot", hot)

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
        by_type = self._hot.get(flag_key)
        if by_type is None:
            message = f"Flag with key {flag_key} not present in flag store."
            return _error(ErrorCode.FLAG_NOT_FOUND, message)
        hot = by_type.get(flag_type)
        if hot is None:
            metadata = self.flags[flag_key].metadata
            return _error(ErrorCode.GENERAL, f"unknown flag type {flag_type!r}", metadata)
        fixed, default, matches, rule, metadata = hot
        if fixed is not None:
            return fixed
        if rule is None:  # not reached: a flag without a rule has a fixed outcome
            return default
        try:
            value, template, key = rule([targeting_key, attributes, now, flag_key, None, None])
        except TargetingParseError as exc:
            return _error(ErrorCode.PARSE_ERROR, f"Invalid targeting: {exc}", metadata)
        except Exception as exc:  # a rule failing at run time, like flagd-core: GENERAL
            return _error(ErrorCode.GENERAL, str(exc) or type(exc).__name__, metadata)
        if value is None:
            return default
        name = value if type(value) is str else variant_name(value)
        match = matches.get(name)
        if match is None:
            return _variant_error(name, metadata)
        if template is None or key is None or match.error_code is not None:
            return match
        return split_resolution(match, template, key)

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
