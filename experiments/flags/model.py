"""Parse and validate a flagd flag set: `flags`, `$evaluators`, `metadata`.

Flag definitions: https://flagd.dev/reference/flag-definitions/
Schema: https://flagd.dev/schema/v0/flags.json

Two levels of checking:
- always, what flagd-core 1.0.0 rejects when flags load (state, variants,
  defaultVariant type, metadata values, unknown flag properties);
- in strict mode (the default), the schema's other rules: the default variant
  is a declared variant, variants share one type, metadata keys are not
  reserved, targeting is an object (checked further while it compiles); and
  voxroute's own: integers within ±2**53, which every JSON reader keeps exact.
Outside strict mode a broken rule loads and fails at evaluation as in flagd-core,
which is what the flagd test bed expects of some of its flags.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import FlagValidationError
from ..json_numbers import is_exact_int

MetadataValue = str | int | float | bool
STATES = ("ENABLED", "DISABLED")
RESERVED_METADATA_PREFIX = "voxroute."
_FLAG_FIELDS = frozenset(
    {"state", "variants", "defaultVariant", "targeting", "metadata", "source", "selector"}
)


@dataclass(frozen=True, slots=True)
class FlagDefinition:
    """One flag after `$ref` expansion. `version` is a short hash of its definition."""

    key: str
    state: str
    variants: Mapping[str, Any]
    default_variant: str | None
    targeting: Any
    metadata: Mapping[str, MetadataValue]
    version: str
    ref_sites: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def enabled(self) -> bool:
        return self.state == "ENABLED"


@dataclass(frozen=True, slots=True)
class FlagSetDefinition:
    """A parsed flag set; `source` names the file (or store key) it came from."""

    flags: Mapping[str, FlagDefinition]
    metadata: Mapping[str, MetadataValue]
    evaluators: Mapping[str, Any]
    source: str = ""
    strict: bool = True


class _Context:
    def __init__(self, source: str, strict: bool) -> None:
        self.source = source
        self.strict = strict

    def fail(self, problem: str, flag_key: str = "", path: str = "") -> FlagValidationError:
        return FlagValidationError(problem, source=self.source, flag_key=flag_key, path=path)


def flag_version(definition: Mapping[str, Any]) -> str:
    """A short stable content hash of a flag definition (12 hex digits of SHA-256)."""
    canonical = json.dumps(
        definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _replace_refs(node: Any, name: str, rule: Any, path: str, sites: dict[str, str]) -> Any:
    if isinstance(node, dict):
        if len(node) == 1 and node.get("$ref") == name:
            sites[path] = name
            return copy.deepcopy(rule)
        return {
            key: _replace_refs(value, name, rule, f"{path}/{_pointer(str(key))}", sites)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_replace_refs(v, name, rule, f"{path}/{i}", sites) for i, v in enumerate(node)]
    return node


def expand_refs(flag: Any, evaluators: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """Replace every `{"$ref": name}` object of a flag by that evaluator's rule.

    Like flagd-core, evaluators are substituted one after the other in declaration
    order, anywhere in the flag, so a `$ref` inside an evaluator is only expanded
    when it names an evaluator declared after it. Returns the expanded flag and the
    paths where a `$ref` was expanded.
    https://flagd.dev/reference/flag-definitions/#shared-evaluators
    """
    sites: dict[str, str] = {}
    for name, rule in evaluators.items():
        if isinstance(name, str) and json.dumps(name)[1:-1] == name:
            flag = _replace_refs(flag, name, rule, "", sites)
    return flag, sites


def _check_json(value: Any, ctx: _Context, flag_key: str, path: str) -> None:
    """Only JSON values (YAML can also produce dates, sets or non-string keys); in
    strict mode, integers within ±2**53 (see `experiments.json_numbers`)."""
    big = isinstance(value, int) and not isinstance(value, bool) and not is_exact_int(value)
    if ctx.strict and big:
        raise ctx.fail(f"integers must be within ±2**53, got {value}", flag_key, path)
    if value is None or isinstance(value, str | int | float | bool):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, ctx, flag_key, f"{path}/{index}")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ctx.fail(f"object keys must be strings, got {key!r}", flag_key, path)
            _check_json(item, ctx, flag_key, f"{path}/{_pointer(key)}")
        return
    raise ctx.fail(f"not a JSON value: {value!r}", flag_key, path)


def _metadata(
    raw: Any, ctx: _Context, flag_key: str, *, of_flag: bool = True
) -> dict[str, MetadataValue]:
    """Metadata: string keys, primitive values (https://flagd.dev/reference/flag-definitions/#metadata).

    A flag may omit it (flagd-core also ignores any falsy value there); the flag set's
    `metadata`, when present, must be an object.
    """
    if of_flag and (raw is None or (not raw and not ctx.strict)):
        return {}
    if not isinstance(raw, dict):
        raise ctx.fail("metadata must be an object", flag_key, "/metadata")
    for key, value in raw.items():
        path = f"/metadata/{_pointer(str(key))}"
        if not isinstance(key, str) or not key:
            raise ctx.fail("metadata keys must be non-empty strings", flag_key, path)
        if value is None or not isinstance(value, str | int | float | bool):
            raise ctx.fail(
                f"metadata values must be strings, numbers or booleans, got {value!r}",
                flag_key,
                path,
            )
        _check_json(value, ctx, flag_key, path)
        if ctx.strict and key.startswith(RESERVED_METADATA_PREFIX):
            raise ctx.fail(f"the prefix {RESERVED_METADATA_PREFIX!r} is reserved", flag_key, path)
    return dict(raw)


def _variant_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict | list) else "null"


def _check_variants(variants: Any, ctx: _Context, key: str) -> None:
    if not isinstance(variants, dict) or not variants:
        raise ctx.fail("variants must be a non-empty object", key, "/variants")
    if not ctx.strict:
        return
    kinds: dict[str, str] = {}
    for name, value in variants.items():
        kind = _variant_kind(value)
        if not name or kind == "null":
            raise ctx.fail("a variant needs a name and a non-null value", key, f"/variants/{name}")
        kinds.setdefault(kind, name)
    if len(kinds) > 1:
        raise ctx.fail(f"variants mix types: {sorted(kinds)}", key, "/variants")


def _default_variant(raw: Any, variants: Mapping[str, Any], ctx: _Context, key: str) -> str | None:
    """flagd-core maps `true`/`false` to "true"/"false" and any other falsy value to none."""
    if ctx.strict:
        if raw is not None and (not isinstance(raw, str) or raw not in variants):
            raise ctx.fail(
                f"defaultVariant {raw!r} is not one of the variants {sorted(variants)}",
                key,
                "/defaultVariant",
            )
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if raw and not isinstance(raw, str):
        raise ctx.fail(f"defaultVariant must be a string, got {raw!r}", key, "/defaultVariant")
    return raw or None


def _flag(key: Any, raw: Any, evaluators: Mapping[str, Any], ctx: _Context) -> FlagDefinition:
    if not isinstance(key, str) or (ctx.strict and not key):
        raise ctx.fail(f"flag keys must be non-empty strings, got {key!r}", path="/flags")
    if not isinstance(raw, dict):
        raise ctx.fail("a flag must be an object", key)
    _check_json(raw, ctx, key, "")
    raw = copy.deepcopy(raw)
    expanded, sites = expand_refs(raw, evaluators)
    for name in sorted(set(expanded) - _FLAG_FIELDS):
        raise ctx.fail(f"unknown flag property {name!r}", key, f"/{_pointer(name)}")
    state = expanded.get("state")
    if state not in STATES:
        raise ctx.fail(f"state must be ENABLED or DISABLED, got {state!r}", key, "/state")
    variants = expanded.get("variants")
    _check_variants(variants, ctx, key)
    targeting = expanded.get("targeting")
    if ctx.strict and targeting is not None and not isinstance(targeting, dict):
        raise ctx.fail("targeting must be an object", key, "/targeting")
    return FlagDefinition(
        key=key,
        state=state,
        variants=MappingProxyType(variants),
        default_variant=_default_variant(expanded.get("defaultVariant"), variants, ctx, key),
        targeting=targeting or None,
        metadata=MappingProxyType(_metadata(expanded.get("metadata"), ctx, key)),
        version=flag_version(expanded),
        ref_sites=MappingProxyType(sites),
    )


def _evaluators(raw: Any, ctx: _Context) -> dict[str, Any]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ctx.fail("$evaluators must be an object", path="/$evaluators")
    for name, rule in raw.items():
        path = f"/$evaluators/{_pointer(str(name))}"
        if not isinstance(name, str) or not name:
            raise ctx.fail("evaluator names must be non-empty strings", path=path)
        if ctx.strict and not isinstance(rule, dict):
            raise ctx.fail("an evaluator must be a rule object", path=path)
        _check_json(rule, ctx, "", path)
    return dict(raw)


def parse_flag_set(data: Any, *, source: str = "", strict: bool = True) -> FlagSetDefinition:
    """Validate a decoded flag set (JSON or YAML) and expand its `$ref`s.

    Raises `FlagValidationError` naming `source`, the flag, the path and the problem.
    """
    ctx = _Context(source, strict)
    if not isinstance(data, dict):
        raise ctx.fail("a flag set must be an object with `flags`")
    if strict and "flags" not in data:
        raise ctx.fail("a flag set needs `flags`", path="/flags")
    flags = data.get("flags", {})
    if not isinstance(flags, dict):
        raise ctx.fail("`flags` must be an object", path="/flags")
    metadata = _metadata(data.get("metadata", {}), ctx, "", of_flag=False)
    evaluators = _evaluators(data.get("$evaluators"), ctx)
    parsed = {key: _flag(key, raw, evaluators, ctx) for key, raw in flags.items()}
    return FlagSetDefinition(
        flags=MappingProxyType(parsed),
        metadata=MappingProxyType(metadata),
        evaluators=MappingProxyType(evaluators),
        source=source,
        strict=strict,
    )
