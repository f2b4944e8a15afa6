"""Splits of a flag and PATCH edits: state, default variant, split weights."""

from __future__ import annotations

from typing import Any

import pytest

from experiments.errors import FlagValidationError
from experiments.flags.patch import FlagPatch, apply_patch, find_splits, has_running_split


def _stt(shipped: dict[str, Any]) -> dict[str, Any]:
    flag: dict[str, Any] = shipped["flags"]["stt-provider"]
    return flag


def test_the_nested_split_is_found_with_its_path_id_and_weights(shipped: dict[str, Any]) -> None:
    (split,) = find_splits("stt-provider", _stt(shipped)["targeting"])
    assert split.path == "/targeting/if/3"
    assert split.split_id.startswith("stt-provider/")
    assert split.weights == (("deepgram-nova-3", 50), ("assemblyai-universal", 50))
    assert split.bucket_unit == "targetingKey"


def test_a_keyed_split_names_its_bucketing_unit(shipped: dict[str, Any]) -> None:
    (split,) = find_splits("tts-provider", shipped["flags"]["tts-provider"]["targeting"])
    assert split.bucket_unit == "tenant_id"
    assert split.weights_dict() == {"elevenlabs-flash": 50, "cartesia-sonic": 50}


def test_weights_change_in_place_and_the_original_is_untouched(shipped: dict[str, Any]) -> None:
    patch = FlagPatch(weights={"deepgram-nova-3": 80, "assemblyai-universal": 20})
    new = apply_patch("stt-provider", _stt(shipped), patch)
    assert new["targeting"]["if"][3] == {
        "fractional": [["deepgram-nova-3", 80], ["assemblyai-universal", 20]]
    }
    assert _stt(shipped)["targeting"]["if"][3]["fractional"][0] == ["deepgram-nova-3", 50]


def test_unnamed_variants_keep_their_weight(shipped: dict[str, Any]) -> None:
    new = apply_patch("stt-provider", _stt(shipped), FlagPatch(weights={"deepgram-nova-3": 0}))
    assert new["targeting"]["if"][3]["fractional"] == [
        ["deepgram-nova-3", 0],
        ["assemblyai-universal", 50],
    ]


def test_a_flag_variant_outside_the_split_is_appended(shipped: dict[str, Any]) -> None:
    patch = FlagPatch(weights={"openai-transcribe": 10})
    new = apply_patch("stt-provider", _stt(shipped), patch)
    assert new["targeting"]["if"][3]["fractional"][-1] == ["openai-transcribe", 10]


def test_state_and_default_variant(shipped: dict[str, Any]) -> None:
    new = apply_patch(
        "stt-provider", _stt(shipped), FlagPatch(state="DISABLED", default_variant="x")
    )
    assert (new["state"], new["defaultVariant"]) == ("DISABLED", "x")


@pytest.mark.parametrize(
    ("flag", "patch", "path", "problem"),
    [
        ("vad-provider", FlagPatch(weights={"silero": 1}), "/targeting", "no fractional split"),
        ("stt-provider", FlagPatch(weights={"nope": 1}), "/variants", "not a variant"),
        ("stt-provider", FlagPatch(weights={"deepgram-nova-3": 1}, split="x"), "/targeting",
         "no split 'x'"),
    ],
)  # fmt: skip
def test_weights_that_cannot_apply_name_the_flag_path_and_problem(
    shipped: dict[str, Any], flag: str, patch: FlagPatch, path: str, problem: str
) -> None:
    with pytest.raises(FlagValidationError) as caught:
        apply_patch(flag, shipped["flags"][flag], patch)
    assert (caught.value.flag_key, caught.value.path) == (flag, path)
    assert problem in caught.value.problem


def test_two_splits_need_a_selector_by_id_or_path() -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"a": "a", "b": "b"},
        "defaultVariant": "a",
        "targeting": {
            "if": [{"var": "x"}, {"fractional": [["a", 1], ["b", 1]]},
                   {"fractional": [{"var": "tenant_id"}, ["a", 1], ["b", 1]]}]
        },
    }  # fmt: skip
    with pytest.raises(FlagValidationError, match="name the split"):
        apply_patch("f", flag, FlagPatch(weights={"a": 3}))
    new = apply_patch("f", flag, FlagPatch(weights={"a": 3}, split="/targeting/if/2"))
    assert new["targeting"]["if"][2]["fractional"][1] == ["a", 3]
    second = find_splits("f", flag["targeting"])[1]
    by_id = apply_patch("f", flag, FlagPatch(weights={"b": 5}, split=second.split_id))
    assert by_id["targeting"]["if"][2]["fractional"][2] == ["b", 5]


def test_a_running_split_is_an_enabled_flag_with_a_fractional(shipped: dict[str, Any]) -> None:
    assert has_running_split(_stt(shipped))
    assert not has_running_split({**_stt(shipped), "state": "DISABLED"})
    assert not has_running_split(shipped["flags"]["vad-provider"])
