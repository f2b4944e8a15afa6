"""Validation of flag sets: every rule names the file, the flag, the path and the problem."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from experiments.errors import ErrorCode as DomainErrorCode
from experiments.errors import FlagValidationError
from experiments.flags import compile_flag_set, parse_flag_set

SOURCE = "flags.json"


def _flag(**overrides: Any) -> dict[str, Any]:
    flag: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {"a": "A", "b": "B"},
        "defaultVariant": "a",
    }
    flag.update(overrides)
    return {key: value for key, value in flag.items() if value is not ...}


def _set(flag: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"flags": {"f": flag}, **top}


def _split(*buckets: Any, key: Any = None) -> dict[str, Any]:
    args = list(buckets) if key is None else [key, *buckets]
    return {"fractional": args}


INVALID: list[tuple[str, dict[str, Any], str, str, str]] = [
    # (case, flag set, flag key, path, problem)
    ("state", _set(_flag(state="ON")), "f", "/state", "state must be ENABLED or DISABLED"),
    ("no state", _set(_flag(state=...)), "f", "/state", "state must be ENABLED or DISABLED"),
    ("empty variants", _set(_flag(variants={})), "f", "/variants", "non-empty object"),
    ("variants list", _set(_flag(variants=["a"])), "f", "/variants", "non-empty object"),
    ("mixed variants", _set(_flag(variants={"a": "A", "b": 1})), "f", "/variants", "mix types"),
    ("null variant", _set(_flag(variants={"a": None})), "f", "/variants/a", "non-null value"),
    ("default", _set(_flag(defaultVariant="c")), "f", "/defaultVariant", "not one of the variants"),
    ("bool default", _set(_flag(defaultVariant=True)), "f", "/defaultVariant", "not one of"),
    ("unknown field", _set(_flag(description="x")), "f", "/description", "unknown flag property"),
    ("flag not object", _set(["x"]), "f", "", "a flag must be an object"),
    ("targeting type", _set(_flag(targeting="a")), "f", "/targeting", "must be an object"),
    (
        "unknown operator",
        _set(_flag(targeting={"if": [{"foo": [1]}, "a", "b"]})),
        "f",
        "/targeting/if/0/foo",
        "unknown operator 'foo'",
    ),
    (
        "arity",
        _set(_flag(targeting={"starts_with": ["abc"]})),
        "f",
        "/targeting/starts_with",
        "'starts_with' takes exactly 2 arguments, got 1",
    ),
    (
        "var arity",
        _set(_flag(targeting={"var": ["a", "b", "c"]})),
        "f",
        "/targeting/var",
        "'var' takes 0 to 2 arguments, got 3",
    ),
    (
        "sem_ver operator",
        _set(_flag(targeting={"sem_ver": [{"var": "v"}, "===", "1.0.0"]})),
        "f",
        "/targeting/sem_ver/1",
        "unknown sem_ver operator '==='",
    ),
    (
        "missing $ref",
        _set(_flag(targeting={"if": [{"$ref": "nope"}, "a", "b"]})),
        "f",
        "/targeting/if/0/$ref",
        "$ref to missing evaluator 'nope'",
    ),
    (
        "$ref order",
        _set(
            _flag(targeting={"if": [{"$ref": "late"}, "a", "b"]}),
            **{"$evaluators": {"early": {"==": [1, 1]}, "late": {"$ref": "early"}}},
        ),
        "f",
        "/targeting/if/0/$ref (inside $ref 'late' at /targeting/if/0)",
        "flagd expands $evaluators in declaration order",
    ),
    (
        "error inside a $ref",
        _set(
            _flag(targeting={"if": [{"$ref": "bad"}, "a", "b"]}),
            **{"$evaluators": {"bad": {"foo": [1]}}},
        ),
        "f",
        "/targeting/if/0/foo (inside $ref 'bad' at /targeting/if/0)",
        "unknown operator 'foo'",
    ),
    (
        "negative weight",
        _set(_flag(targeting=_split(["a", 50], ["b", -5], key={"var": "k"}))),
        "f",
        "/targeting/fractional/2/1",
        "a weight must be a non-negative integer, got -5",
    ),
    (
        "float weight",
        _set(_flag(targeting=_split(["a", 0.5], ["b", 1]))),
        "f",
        "/targeting/fractional/0/1",
        "a weight must be a non-negative integer, got 0.5",
    ),
    (
        "boolean weight",
        _set(_flag(targeting=_split(["a", True]))),
        "f",
        "/targeting/fractional/0/1",
        "got True",
    ),
    (
        "weights above MaxInt32",
        _set(_flag(targeting=_split(["a", 2_147_483_647], ["b", 1]))),
        "f",
        "/targeting/fractional",
        "the weights sum to 2147483648",
    ),
    (
        "malformed bucket",
        _set(_flag(targeting=_split("a", key={"var": "k"}))),
        "f",
        "/targeting/fractional/1",
        "a bucket must be [variant] or [variant, weight]",
    ),
    (
        "no buckets",
        _set(_flag(targeting=_split(key={"var": "k"}))),
        "f",
        "/targeting/fractional",
        "at least one [variant, weight] bucket",
    ),
    (
        "bucketing key",
        _set(_flag(targeting=_split(["a", 1], key=5))),
        "f",
        "/targeting/fractional/0",
        "bucketing key must be a string or a rule",
    ),
    (
        "split variant",
        _set(_flag(targeting=_split(["a", 1], ["z", 1]))),
        "f",
        "/targeting/fractional/1/0",
        "the rule returns 'z', which is not a variant",
    ),
    (
        "result variant",
        _set(_flag(targeting={"if": [{"var": "x"}, "nope", None]})),
        "f",
        "/targeting/if/1",
        "the rule returns 'nope', which is not a variant",
    ),
    (
        "always fails",
        _set(_flag(targeting={"if": [{"/": [1, 0]}, "a", None]})),
        "f",
        "/targeting/if/0/~1",
        "always fails: ZeroDivisionError",
    ),
    (
        "two keys",
        _set(_flag(targeting={"if": [{"==": [1, 1], "!=": [1, 2]}, "a", None]})),
        "f",
        "/targeting/if/0",
        "exactly one operator",
    ),
    (
        "$flagd context",
        _set(_flag(targeting={"if": [{"var": "$flagd.region"}, "a", None]})),
        "f",
        "/targeting/if/0/var",
        "unknown flagd context value '$flagd.region'",
    ),
    (
        "metadata list",
        _set(_flag(metadata={"tags": ["x"]})),
        "f",
        "/metadata/tags",
        "metadata values must be strings, numbers or booleans",
    ),
    ("metadata null", _set(_flag(metadata={"owner": None})), "f", "/metadata/owner", "got None"),
    ("metadata type", _set(_flag(metadata="x")), "f", "/metadata", "metadata must be an object"),
    (
        "reserved metadata",
        _set(_flag(metadata={"voxroute.flag_version": "1"})),
        "f",
        "/metadata/voxroute.flag_version",
        "reserved",
    ),
    (
        "set metadata",
        _set(_flag(), metadata={"team": {"a": 1}}),
        "",
        "/metadata/team",
        "metadata values must be strings",
    ),
    (
        "integer beyond 2**53",
        _set(_flag(variants={"a": 2**53 + 1, "b": 1})),
        "f",
        "/variants/a",
        "integers must be within ±2**53",
    ),
    (
        "set metadata integer beyond 2**53",
        _set(_flag(), metadata={"n": -(2**53) - 1}),
        "",
        "/metadata/n",
        "integers must be within ±2**53",
    ),
    ("no flags", {"metadata": {}}, "", "/flags", "a flag set needs `flags`"),
    ("flags type", {"flags": []}, "", "/flags", "`flags` must be an object"),
    ("evaluators type", _set(_flag(), **{"$evaluators": ["x"]}), "", "/$evaluators", "object"),
]


@pytest.mark.parametrize(
    ("case", "data", "flag_key", "path", "problem"), INVALID, ids=[row[0] for row in INVALID]
)
def test_invalid_flag_set_is_rejected_with_its_location(
    case: str, data: dict[str, Any], flag_key: str, path: str, problem: str
) -> None:
    with pytest.raises(FlagValidationError) as caught:
        compile_flag_set(data, source=SOURCE)
    error = caught.value
    assert (error.source, error.flag_key, error.path) == (SOURCE, flag_key, path), case
    assert problem in error.problem
    assert error.code is DomainErrorCode.INVALID_FLAGS


def test_the_message_names_file_flag_path_and_problem() -> None:
    with pytest.raises(FlagValidationError) as caught:
        compile_flag_set(_set(_flag(state="ON")), source=SOURCE)
    assert str(caught.value) == (
        "file flags.json, flag 'f', at /state: state must be ENABLED or DISABLED, got 'ON'"
    )


def test_the_shipped_flag_set_is_valid() -> None:
    from experiments.flags import load_default_flag_set

    assert set(load_default_flag_set().flags) == {
        "voice-mode",
        "stt-provider",
        "tts-provider",
        "s2s-provider",
        "vad-provider",
        "turn-detector",
    }


LENIENT_ONLY = [
    _flag(targeting={"starts_with": ["abc"]}),
    _flag(targeting={"if": [{"$ref": "nope"}, "a", "b"]}),
    _flag(targeting=_split(["a", -50], ["b", 100])),
    _flag(targeting={"sem_ver": [{"var": "v"}, "==="]}),
    _flag(defaultVariant="zzz"),
    _flag(variants={"a": "A", "b": 1}),
    _flag(targeting="not an object"),
]


@pytest.mark.parametrize("flag", LENIENT_ONLY, ids=repr)
def test_non_strict_mode_loads_what_flagd_core_loads(flag: dict[str, Any]) -> None:
    with pytest.raises(FlagValidationError):
        compile_flag_set(_set(flag), strict=True)
    assert set(compile_flag_set(_set(flag), strict=False).flags) == {"f"}


FLAGD_CORE_REJECTS = [
    _flag(state="ON"),
    _flag(variants={}),
    _flag(defaultVariant=5),
    _flag(metadata={"k": [1]}),
    _flag(extra=1),
]


@pytest.mark.parametrize("flag", FLAGD_CORE_REJECTS, ids=repr)
def test_non_strict_mode_still_rejects_what_flagd_core_rejects(flag: dict[str, Any]) -> None:
    with pytest.raises(FlagValidationError):
        compile_flag_set(_set(flag), strict=False)


def test_version_is_a_short_hex_content_hash() -> None:
    version = parse_flag_set(_set(_flag())).flags["f"].version
    assert re.fullmatch(r"[0-9a-f]{12}", version)


def test_version_is_stable_across_loads_and_key_order() -> None:
    flag = _flag(targeting={"if": [{"var": "x"}, "b", None]})
    reordered = dict(reversed(list(copy.deepcopy(flag).items())))
    first = parse_flag_set(_set(flag)).flags["f"].version
    assert parse_flag_set(_set(reordered)).flags["f"].version == first


def test_version_changes_with_the_definition() -> None:
    before = parse_flag_set(_set(_flag(defaultVariant="a"))).flags["f"].version
    after = parse_flag_set(_set(_flag(defaultVariant="b"))).flags["f"].version
    assert before != after


def test_version_is_taken_after_ref_expansion() -> None:
    rule = {"in": [{"var": "region"}, ["us", "eu"]]}
    inline = _set(_flag(targeting={"if": [rule, "b", None]}))
    referenced = _set(
        _flag(targeting={"if": [{"$ref": "regions"}, "b", None]}),
        **{"$evaluators": {"regions": rule}},
    )
    assert (
        parse_flag_set(inline).flags["f"].version == parse_flag_set(referenced).flags["f"].version
    )


def test_ref_is_expanded_inside_the_flag_and_recorded() -> None:
    data = _set(
        _flag(targeting={"if": [{"$ref": "regions"}, "b", None]}),
        **{"$evaluators": {"regions": {"in": [{"var": "region"}, ["us"]]}}},
    )
    flag = parse_flag_set(data).flags["f"]
    assert flag.targeting == {"if": [{"in": [{"var": "region"}, ["us"]]}, "b", None]}
    assert dict(flag.ref_sites) == {"/targeting/if/0": "regions"}


def test_parsing_does_not_keep_a_reference_to_the_input() -> None:
    data = _set(_flag(variants={"a": {"k": 1}, "b": {"k": 2}}))
    flag = parse_flag_set(data).flags["f"]
    data["flags"]["f"]["variants"]["a"]["k"] = 99
    assert flag.variants["a"] == {"k": 1}
