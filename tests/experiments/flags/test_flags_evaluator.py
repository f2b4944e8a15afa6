"""CompiledFlagSet.resolve: reasons, error codes, type checks, metadata, change detection."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagType, Reason

from experiments.flags import (
    FLAG_VERSION_KEY,
    CompiledFlagSet,
    Resolution,
    SplitInfo,
    compile_flag_set,
)
from experiments.flags.evaluator import split_resolution
from experiments.flags.fractional import new_split_info, split_metadata, split_template
from experiments.flags.keys import BUCKET_KEY_KEY, SPLIT_ID_KEY

FLAGS: dict[str, Any] = {
    "metadata": {"flagSetId": "demo", "team": "voice"},
    "flags": {
        "static": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        "targeted": {
            "state": "ENABLED",
            "variants": {"us": "US", "other": "OTHER"},
            "defaultVariant": "other",
            "targeting": {"if": [{"==": [{"var": "region"}, "us"]}, "us", None]},
            "metadata": {"team": "routing", "owner": "ana"},
        },
        "off": {"state": "DISABLED", "variants": {"a": 1}, "defaultVariant": "a"},
        "no-default": {"state": "ENABLED", "variants": {"a": 1, "b": 2}},
        "numbers": {
            "state": "ENABLED",
            "variants": {"one": 1, "half": 0.5},
            "defaultVariant": "one",
        },
        "clock": {
            "state": "ENABLED",
            "variants": {"early": "early", "late": "late"},
            "defaultVariant": "early",
            "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, 1000]}, "late", "early"]},
        },
    },
}
BROKEN: dict[str, Any] = {
    "flags": {
        "unknown-variant": {
            "state": "ENABLED",
            "variants": {"a": "a"},
            "defaultVariant": "a",
            "targeting": {"var": "pick"},
        },
        "unknown-operator": {
            "state": "ENABLED",
            "variants": {"a": "a"},
            "defaultVariant": "a",
            "targeting": {"if": [{"nope": [1]}, "a", None]},
        },
        "divides-by-zero": {
            "state": "ENABLED",
            "variants": {"a": "a"},
            "defaultVariant": "a",
            "targeting": {"if": [{"/": [1, {"var": "n"}]}, "a", None]},
        },
        "bad-default": {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "zzz"},
    }
}


@pytest.fixture(scope="module")
def flags() -> CompiledFlagSet:
    return compile_flag_set(FLAGS, source="demo.json")


@pytest.fixture(scope="module")
def broken() -> CompiledFlagSet:
    return compile_flag_set(BROKEN, strict=False)


REASONS: list[tuple[str, dict[str, Any], tuple[Any, str | None, Reason]]] = [
    ("static", {}, (True, "on", Reason.STATIC)),
    ("targeted", {"region": "us"}, ("US", "us", Reason.TARGETING_MATCH)),
    ("targeted", {"region": "eu"}, ("OTHER", "other", Reason.DEFAULT)),
    ("off", {}, (None, None, Reason.DISABLED)),
    ("no-default", {}, (None, None, Reason.DEFAULT)),
]


@pytest.mark.parametrize(("key", "attributes", "expected"), REASONS)
def test_reason_follows_flagd(
    flags: CompiledFlagSet,
    key: str,
    attributes: dict[str, Any],
    expected: tuple[Any, str | None, Reason],
) -> None:
    result = flags.resolve(key, "s-1", attributes)
    assert (result.value, result.variant, result.reason) == expected
    assert result.error_code is None


def test_missing_flag_is_flag_not_found(flags: CompiledFlagSet) -> None:
    result = flags.resolve("nope", "s-1", {})
    assert (result.reason, result.error_code) == (Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    assert result.value is None
    assert "nope" in (result.error_message or "")


@pytest.mark.parametrize(
    ("key", "attributes", "code"),
    [
        ("unknown-variant", {"pick": "b"}, ErrorCode.GENERAL),
        ("unknown-operator", {}, ErrorCode.PARSE_ERROR),
        ("divides-by-zero", {"n": 0}, ErrorCode.GENERAL),
        ("bad-default", {}, ErrorCode.GENERAL),
    ],
)
def test_broken_rules_resolve_to_an_error_instead_of_raising(
    broken: CompiledFlagSet, key: str, attributes: dict[str, Any], code: ErrorCode
) -> None:
    result = broken.resolve(key, "s-1", attributes)
    assert (result.value, result.variant, result.reason) == (None, None, Reason.ERROR)
    assert result.error_code == code


def test_an_error_keeps_the_flag_version(broken: CompiledFlagSet) -> None:
    result = broken.resolve("unknown-operator", "s-1", {})
    assert result.flag_metadata[FLAG_VERSION_KEY] == broken.flags["unknown-operator"].version


def test_a_rule_only_fails_when_the_failing_part_is_reached(broken: CompiledFlagSet) -> None:
    assert broken.resolve("divides-by-zero", "s-1", {"n": 2}).variant == "a"


@pytest.mark.parametrize(
    ("key", "flag_type", "code"),
    [
        ("static", FlagType.STRING, ErrorCode.TYPE_MISMATCH),
        ("static", FlagType.INTEGER, ErrorCode.TYPE_MISMATCH),
        ("numbers", FlagType.BOOLEAN, ErrorCode.TYPE_MISMATCH),
        ("targeted", FlagType.OBJECT, ErrorCode.TYPE_MISMATCH),
        ("static", FlagType.BOOLEAN, None),
        ("numbers", FlagType.INTEGER, None),
        ("off", FlagType.OBJECT, None),
        ("no-default", FlagType.STRING, None),
    ],
)
def test_type_check_follows_flagd_core(
    flags: CompiledFlagSet, key: str, flag_type: FlagType, code: ErrorCode | None
) -> None:
    assert flags.resolve(key, None, {}, flag_type=flag_type).error_code == code


def test_an_unknown_flag_type_is_a_general_error(flags: CompiledFlagSet) -> None:
    result = flags.resolve("static", None, {}, flag_type="DATE")  # type: ignore[arg-type]
    assert (result.reason, result.error_code) == (Reason.ERROR, ErrorCode.GENERAL)


def test_a_flag_type_given_as_its_string_works(flags: CompiledFlagSet) -> None:
    result = flags.resolve("static", None, {}, flag_type="STRING")  # type: ignore[arg-type]
    assert result.error_code == ErrorCode.TYPE_MISMATCH


def test_an_integer_resolves_as_a_float(flags: CompiledFlagSet) -> None:
    result = flags.resolve("numbers", None, {}, flag_type=FlagType.FLOAT)
    assert result.value == 1.0
    assert isinstance(result.value, float)


def test_metadata_merges_set_and_flag_with_the_flag_winning(flags: CompiledFlagSet) -> None:
    result = flags.resolve("targeted", "s-1", {"region": "us"})
    assert dict(result.flag_metadata) == {
        "flagSetId": "demo",
        "team": "routing",
        "owner": "ana",
        FLAG_VERSION_KEY: flags.flags["targeted"].version,
    }


def test_metadata_of_a_flag_without_its_own_is_the_set_metadata(flags: CompiledFlagSet) -> None:
    metadata = flags.resolve("static", None, {}).flag_metadata
    assert dict(metadata) == {
        "flagSetId": "demo",
        "team": "voice",
        FLAG_VERSION_KEY: flags.flags["static"].version,
    }


@pytest.mark.parametrize(("now", "variant"), [(999, "early"), (1001, "late")])
def test_flagd_timestamp_can_be_fixed(flags: CompiledFlagSet, now: int, variant: str) -> None:
    assert flags.resolve("clock", None, {}, now).variant == variant


def test_flagd_timestamp_defaults_to_the_clock(flags: CompiledFlagSet) -> None:
    assert flags.resolve("clock", None, {}).variant == "late"


def test_attributes_named_like_flagd_context_do_not_override_it() -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"k": "k", "other": "other"},
        "defaultVariant": "other",
        "targeting": {"if": [{"==": [{"var": "targetingKey"}, "real"]}, "k", None]},
    }
    flags = compile_flag_set({"flags": {"f": flag}})
    assert flags.resolve("f", "real", {"targetingKey": "fake"}).variant == "k"
    assert flags.resolve("f", "fake", {"targetingKey": "real"}).variant == "other"


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return compile_flag_set(after).changed_keys(compile_flag_set(before))


def test_changed_keys_lists_added_removed_and_modified_flags() -> None:
    after: dict[str, Any] = {"metadata": FLAGS["metadata"], "flags": dict(FLAGS["flags"])}
    del after["flags"]["off"]
    after["flags"]["new"] = FLAGS["flags"]["static"]
    after["flags"]["numbers"] = {**FLAGS["flags"]["numbers"], "defaultVariant": "half"}
    assert _changed(FLAGS, after) == ["new", "numbers", "off"]


def test_changed_keys_is_empty_for_the_same_content() -> None:
    assert _changed(FLAGS, FLAGS) == []


def test_a_change_of_set_metadata_changes_every_flag() -> None:
    after = {**FLAGS, "metadata": {"flagSetId": "demo-2"}}
    assert _changed(FLAGS, after) == sorted(FLAGS["flags"])


def test_the_hot_path_split_resolution_equals_a_regular_one() -> None:
    metadata: dict[str, Any] = {"k": 1, SPLIT_ID_KEY: "f/0123456789"}
    template = split_template(metadata, "f/0123456789", (("a", 1), ("b", 3)), "targetingKey")
    match = Resolution("A", "a", Reason.TARGETING_MATCH, None, None, metadata)
    fast = split_resolution(match, template, "fs-1")
    split = SplitInfo("f/0123456789", (("a", 1), ("b", 3)), "targetingKey", "fs-1")
    assert fast.split == split == new_split_info(*_split_fields(split))
    expected_metadata = {
        **split_metadata(metadata, "f/0123456789", (("a", 1), ("b", 3)), "targetingKey"),
        BUCKET_KEY_KEY: "fs-1",
    }
    assert fast.flag_metadata == expected_metadata
    assert expected_metadata == fast.flag_metadata
    assert dict(fast.flag_metadata) == expected_metadata
    assert list(fast.flag_metadata.items()) == list(expected_metadata.items())
    assert len(fast.flag_metadata) == len(expected_metadata)
    assert fast.flag_metadata.get(BUCKET_KEY_KEY) == "fs-1"
    assert fast.flag_metadata.get("missing") is None
    assert "missing" not in fast.flag_metadata
    assert BUCKET_KEY_KEY in fast.flag_metadata
    regular = Resolution("A", "a", Reason.SPLIT, None, None, expected_metadata, split)
    assert fast == regular
    assert regular == fast
    assert fast != Resolution("B", "b", Reason.SPLIT, None, None, expected_metadata, split)
    assert isinstance(fast, Resolution)
    assert repr(fast) == repr(regular)
    assert pickle.loads(pickle.dumps(fast)) == regular  # noqa: S301 (our own bytes)
    assert replace(fast, value="B") == replace(regular, value="B")
    assert type(replace(fast, value="B")) is Resolution
    with pytest.raises(FrozenInstanceError):
        fast.value = "B"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        fast._key = "other"  # type: ignore[attr-defined]


def _split_fields(split: SplitInfo) -> tuple[str, tuple[tuple[str, int], ...], str, str]:
    return split.split_id, split.weights, split.bucket_unit, split.bucket_key
