"""Bucketing against published values, split ids, and SplitInfo of the shipped flags."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openfeature.flag_evaluation import Reason

from experiments.flags import (
    BUCKET_KEY_KEY,
    BUCKET_UNIT_KEY,
    SPLIT_ID_KEY,
    SPLIT_WEIGHTS_KEY,
    CompiledFlagSet,
    bucket_hash,
    compile_flag_set,
    load_default_flag_set,
)

# MurmurHash3_x86_32 test vectors with seed 0 (Wikipedia "MurmurHash", test vectors table).
MURMUR3_VECTORS = [
    ("", 0x00000000),
    ("test", 0xBA6BD213),
    ("Hello, world!", 0xC0363E43),
    ("The quick brown fox jumps over the lazy dog", 0x2E4FF723),
]


@pytest.mark.parametrize(("key", "expected"), MURMUR3_VECTORS)
def test_bucket_hash_is_murmur3_x86_32_seed_0_unsigned(key: str, expected: int) -> None:
    assert bucket_hash(key) == expected


def test_bucket_hash_hashes_utf8_bytes() -> None:
    assert bucket_hash("é") == bucket_hash("\u00e9") != bucket_hash("e")


def _one_flag(targeting: dict[str, Any], variants: list[str], key: str = "f") -> CompiledFlagSet:
    flag = {
        "state": "ENABLED",
        "variants": {name: name for name in variants},
        "defaultVariant": variants[-1],
        "targeting": targeting,
    }
    return compile_flag_set({"flags": {key: flag}})


# flagd test bed 3.9.0, evaluator/gherkin/fractional.feature, "hash edge cases" (@fractional-v2):
# keys whose MurmurHash3 is 0, 1, 2^31-1, 2^31 and 2^32-1.
HASH_EDGES = [
    ("ejOoVL", 0, "lower"),
    ("bY9fO-", 1, "lower"),
    ("SI7p-", 2**31 - 1, "lower"),
    ("6LvT0", 2**31, "upper"),
    ("ceQdGm", 2**32 - 1, "upper"),
]


@pytest.mark.parametrize(("key", "hash_value", "variant"), HASH_EDGES)
def test_hash_edge_vectors_of_the_flagd_test_bed(key: str, hash_value: int, variant: str) -> None:
    flags = _one_flag(
        {"fractional": [{"var": "targetingKey"}, ["lower", 50], ["upper", 50]]}, ["lower", "upper"]
    )
    assert bucket_hash(key) == hash_value
    assert flags.resolve("f", key, {}).variant == variant


# flagd test bed 3.9.0, fractional.feature, @fractional-v2 examples of "fractional-flag".
SUIT_SPLIT = {
    "fractional": [
        {"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]},
        ["clubs", 25],
        ["diamonds", 25],
        ["hearts", 25],
        ["spades", 25],
    ]
}


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("jack", "hearts"),
        ("queen", "spades"),
        ("ten", "clubs"),
        ("nine", "diamonds"),
        ("3", "clubs"),
    ],
)
def test_published_v2_buckets_of_the_test_bed(name: str, variant: str) -> None:
    suits = ["clubs", "diamonds", "hearts", "spades", "wild"]
    flags = _one_flag(SUIT_SPLIT, suits, key="fractional-flag")
    assert flags.resolve("fractional-flag", None, {"user": {"name": name}}).variant == variant


@pytest.mark.parametrize(
    ("key", "variant"), [("jon@company.com", "heads"), ("jane@company.com", "tails")]
)
def test_published_v2_shorthand_buckets_of_the_test_bed(key: str, variant: str) -> None:
    flags = _one_flag(
        {"fractional": [["heads"], ["tails", 1]]},
        ["heads", "tails", "draw"],
        key="fractional-flag-shorthand",
    )
    assert flags.resolve("fractional-flag-shorthand", key, {}).variant == variant


def test_bucket_is_hash_times_total_weight_shifted_by_32() -> None:
    flags = _one_flag({"fractional": [["a", 1], ["b", 2], ["c", 7]]}, ["a", "b", "c"])
    for session in (f"s-{i}" for i in range(200)):
        bucket = (bucket_hash("f" + session) * 10) >> 32
        expected = "a" if bucket < 1 else "b" if bucket < 3 else "c"
        assert flags.resolve("f", session, {}).variant == expected


def test_zero_weight_variant_is_never_chosen() -> None:
    flags = _one_flag({"fractional": [["a", 0], ["b", 1]]}, ["a", "b"])
    assert {flags.resolve("f", f"s-{i}", {}).variant for i in range(100)} == {"b"}


def test_negative_weight_is_clamped_to_zero_outside_strict_mode() -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"one": "one", "two": "two"},
        "defaultVariant": "one",
        "targeting": {"fractional": [{"var": "targetingKey"}, ["one", -50], ["two", 100]]},
    }
    flags = compile_flag_set({"flags": {"f": flag}}, strict=False)
    assert {flags.resolve("f", f"s-{i}", {}).variant for i in range(100)} == {"two"}


def test_total_weight_above_max_int32_gives_the_default_outside_strict_mode() -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"a": "a", "b": "b"},
        "defaultVariant": "a",
        "targeting": {"fractional": [["a", 2_147_483_647], ["b", 1]]},
    }
    flags = compile_flag_set({"flags": {"f": flag}}, strict=False)
    assert flags.resolve("f", "s-1", {}).reason == Reason.DEFAULT


def test_shorthand_without_targeting_key_gives_the_default() -> None:
    flags = _one_flag({"fractional": [["a", 1], ["b", 1]]}, ["a", "b"])
    result = flags.resolve("f", None, {})
    assert (result.reason, result.split) == (Reason.DEFAULT, None)


def _split_id(targeting: dict[str, Any], variants: list[str]) -> str:
    split = _one_flag(targeting, variants).resolve("f", "s-1", {"tenant_id": "t"}).split
    assert split is not None
    return split.split_id


def test_split_id_survives_a_weight_change() -> None:
    before = _split_id({"fractional": [["a", 50], ["b", 50]]}, ["a", "b"])
    after = _split_id({"fractional": [["a", 10], ["b", 90]]}, ["a", "b"])
    assert before == after


def test_split_id_is_stable_across_reloads() -> None:
    targeting = {"fractional": [{"var": "tenant_id"}, ["a", 1], ["b", 1]]}
    assert _split_id(targeting, ["a", "b"]) == _split_id(targeting, ["a", "b"])


def test_split_id_changes_with_the_variants() -> None:
    assert _split_id({"fractional": [["a", 1], ["b", 1]]}, ["a", "b", "c"]) != _split_id(
        {"fractional": [["a", 1], ["c", 1]]}, ["a", "b", "c"]
    )


def test_split_id_changes_with_the_bucketing_expression() -> None:
    assert _split_id({"fractional": [["a", 1], ["b", 1]]}, ["a", "b"]) != _split_id(
        {"fractional": [{"var": "tenant_id"}, ["a", 1], ["b", 1]]}, ["a", "b"]
    )


def test_split_id_starts_with_the_flag_key() -> None:
    assert _split_id({"fractional": [["a", 1], ["b", 1]]}, ["a", "b"]).startswith("f/")


def test_two_fractional_nodes_of_one_flag_have_distinct_ids() -> None:
    same = [["a", 50], ["b", 50]]
    targeting = {
        "if": [
            {"==": [{"var": "region"}, "us"]},
            {"fractional": same},
            {"fractional": [["a", 10], ["b", 90]]},
        ]
    }
    flags = _one_flag(targeting, ["a", "b"])
    us = flags.resolve("f", "s-1", {"region": "us"}).split
    eu = flags.resolve("f", "s-1", {"region": "eu"}).split
    assert us is not None
    assert eu is not None
    assert us.split_id != eu.split_id
    assert eu.split_id == us.split_id + "-2"


def test_stt_provider_split_buckets_sessions() -> None:
    result = load_default_flag_set().resolve(
        "stt-provider", "sess-1", {"region": "us", "tenant_id": "acme"}
    )
    assert result.reason == Reason.SPLIT
    assert result.split is not None
    assert result.split.split_id.startswith("stt-provider/")
    assert result.split.weights == (("deepgram-nova-3", 50), ("assemblyai-universal", 50))
    assert result.split.bucket_unit == "targetingKey"
    assert result.split.bucket_key == "stt-provider" + "sess-1"


def test_tts_provider_split_buckets_tenants() -> None:
    result = load_default_flag_set().resolve(
        "tts-provider", "sess-1", {"region": "eu", "tenant_id": "acme"}
    )
    assert result.reason == Reason.SPLIT
    assert result.split is not None
    assert result.split.split_id.startswith("tts-provider/")
    assert result.split.weights == (("elevenlabs-flash", 50), ("cartesia-sonic", 50))
    assert result.split.bucket_unit == "tenant_id"
    assert result.split.bucket_key == "tts-provider" + "acme"


def test_every_session_of_a_tenant_gets_the_same_tts_variant() -> None:
    flags = load_default_flag_set()
    variants = {
        flags.resolve("tts-provider", f"sess-{i}", {"region": "eu", "tenant_id": "acme"}).variant
        for i in range(50)
    }
    assert len(variants) == 1


def test_split_is_surfaced_in_the_flag_metadata() -> None:
    result = load_default_flag_set().resolve("s2s-provider", "sess-9", {})
    assert result.split is not None
    assert result.flag_metadata[SPLIT_ID_KEY] == result.split.split_id
    assert result.flag_metadata[BUCKET_UNIT_KEY] == "targetingKey"
    assert result.flag_metadata[BUCKET_KEY_KEY] == "s2s-providersess-9"
    weights = result.flag_metadata[SPLIT_WEIGHTS_KEY]
    assert weights == '{"openai-realtime":80,"gemini-live":20}'
    assert json.loads(str(weights)) == {"openai-realtime": 80, "gemini-live": 20}


def test_bucket_unit_joins_several_variables() -> None:
    targeting = {
        "fractional": [{"cat": [{"var": "region"}, {"var": "tenant_id"}]}, ["a", 1], ["b", 1]]
    }
    split = (
        _one_flag(targeting, ["a", "b"]).resolve("f", "s", {"region": "eu", "tenant_id": "t"}).split
    )
    assert split is not None
    assert (split.bucket_unit, split.bucket_key) == ("region+tenant_id", "eut")


SPLIT_NOT_DECIDING: list[dict[str, Any]] = [
    {"if": [{"fractional": [[False, 0], [True, 100]]}, "a", "b"]},
    {"if": [{"==": [{"fractional": [["a", 1]]}, "a"]}, "b", "a"]},
    {"or": [{"fractional": [["", 1]]}, "a"]},
    {"cat": [{"fractional": [["a", 1]]}]},
]


@pytest.mark.parametrize("targeting", SPLIT_NOT_DECIDING, ids=repr)
def test_a_fractional_that_does_not_produce_the_variant_is_no_split(
    targeting: dict[str, Any],
) -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"a": "a", "b": "b"},
        "defaultVariant": "a",
        "targeting": targeting,
    }
    result = compile_flag_set({"flags": {"f": flag}}, strict=False).resolve("f", "s-1", {})
    assert (result.reason, result.split) == (Reason.TARGETING_MATCH, None)
    assert SPLIT_ID_KEY not in result.flag_metadata


SPLIT_DECIDING: list[dict[str, Any]] = [
    {"fractional": [["a", 1], ["b", 1]]},
    {"if": [{"var": "on"}, {"fractional": [["a", 1], ["b", 1]]}, None]},
    {"if": [False, "a", {"if": [True, {"fractional": [["a", 1], ["b", 1]]}]}]},
    {"and": [True, {"fractional": [["a", 1], ["b", 1]]}]},
    {"or": [None, {"fractional": [["a", 1], ["b", 1]]}]},
    {"fractional": [["a", 1], [{"if": [{"var": "on"}, "b", "a"]}, 1]]},
]


@pytest.mark.parametrize("targeting", SPLIT_DECIDING, ids=repr)
def test_a_fractional_whose_result_is_returned_is_a_split(targeting: dict[str, Any]) -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"a": "a", "b": "b"},
        "defaultVariant": "a",
        "targeting": targeting,
    }
    result = compile_flag_set({"flags": {"f": flag}}, strict=False).resolve(
        "f", "s-1", {"on": True}
    )
    assert result.reason == Reason.SPLIT
    assert result.split is not None
    assert result.flag_metadata[SPLIT_ID_KEY] == result.split.split_id
