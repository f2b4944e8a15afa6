"""Recommendations: ship / keep control / keep running / investigate, and the flagd change."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from synthetic import METRICS, Experiment, MemoryEvents

from analysis import analyze, load_sessions
from analysis.results import Action, Recommendation
from experiments.flags.loader import DEFAULT_FLAGS_PATH, compile_flag_set
from experiments.flags.split_ids import split_sites

FLAG_SET = json.loads(DEFAULT_FLAGS_PATH.read_text())
STT = FLAG_SET["flags"]["stt-provider"]
(STT_SPLIT,) = {site.split_id for site in split_sites("stt-provider", STT["targeting"]).values()}
WINNER, CONTROL = "assemblyai-universal", "deepgram-nova-3"


def recommendations(
    effects: dict[Any, dict[str, float]], sessions: int = 3000, **kwargs: Any
) -> dict[str, Recommendation]:
    experiment = Experiment(sessions=sessions, effects=effects, split_id=STT_SPLIT, **kwargs)
    df = load_sessions(
        MemoryEvents(*experiment.events()), "stt-provider", metrics=METRICS, flag=STT
    )
    result = analyze(df, segment_by="region")
    return {r.segment: r for r in result.periods[0].recommendations}


def applied(targeting_change: dict[str, Any]) -> dict[str, Any]:
    """The shipped flag set with the change's JSON Patch applied (one `replace` operation)."""
    (operation,) = targeting_change["patch"]
    assert operation["op"] == "replace"
    flag_set = copy.deepcopy(FLAG_SET)
    *parents, last = operation["path"].lstrip("/").split("/")
    node = flag_set
    for key in parents:
        node = node[key.replace("~1", "/").replace("~0", "~")]
    node[last] = operation["value"]
    return flag_set


def served(flag_set: dict[str, Any], region: str, tenant: str = "acme") -> str:
    compiled = compile_flag_set(flag_set)
    attributes = {"region": region, "tenant_id": tenant, "features": {}, "attributes": {}}
    return str(compiled.resolve("stt-provider", "session-1", attributes).variant)


def test_a_clear_winner_is_shipped_with_the_change_that_does_it() -> None:
    found = recommendations({WINNER: {"stt_ttfb_ms": -20.0}})["all"]
    assert found.action is Action.SHIP
    assert found.variant == WINNER
    assert found.message.startswith(f"Ship {WINNER}: better on stt_ttfb_ms")
    assert "guardrails within their margins (e2e_latency_ms)" in found.message
    change = found.targeting
    assert change is not None
    assert change["weights_patch"] == {"split": STT_SPLIT, "weights": {CONTROL: 0, WINNER: 100}}
    assert change["replace_fractional_with"] == WINNER
    assert change["patch"][0]["path"] == "/flags/stt-provider/targeting"
    flag_set = applied(change)
    assert served(flag_set, "eu") == WINNER
    assert served(flag_set, "us") == WINNER
    assert served(flag_set, "eu", tenant="globex") == "openai-transcribe"  # other rules untouched
    assert served(flag_set, "apac") == "deepgram-nova-3"  # the default, as before


def test_a_worse_variant_keeps_the_control() -> None:
    found = recommendations({WINNER: {"stt_ttfb_ms": 25.0}})["all"]
    assert found.action is Action.KEEP_CONTROL
    assert found.variant == CONTROL
    assert f"{WINNER}: worse on stt_ttfb_ms" in found.message
    assert found.targeting is not None
    assert served(applied(found.targeting), "us") == CONTROL


def test_a_harmed_guardrail_keeps_the_control_even_with_a_win() -> None:
    found = recommendations({WINNER: {"stt_ttfb_ms": -20.0, "e2e_latency_ms": 100.0}})["all"]
    assert found.action is Action.KEEP_CONTROL
    assert "e2e_latency_ms" in found.message


def test_an_undecided_test_keeps_running_with_the_sessions_still_needed() -> None:
    found = recommendations({WINNER: {"stt_ttfb_ms": -1.5}}, sessions=1500)["all"]
    assert found.action is Action.KEEP_RUNNING
    assert found.targeting is None
    assert found.sessions_needed is not None
    assert found.sessions_needed > 0
    assert found.days_needed == pytest.approx(found.sessions_needed / (1500 / 7), rel=0.01)
    assert f"About {found.sessions_needed:,} more sessions" in found.message
    assert "for 80% power at the observed effect on" in found.message


def test_a_winner_in_one_region_is_shipped_there_only() -> None:
    found = recommendations({(WINNER, "eu"): {"stt_ttfb_ms": -30.0}})
    eu = found["region=eu"]
    assert eu.action is Action.SHIP
    assert "in region=eu" in eu.message
    assert eu.targeting is not None
    assert eu.targeting["weights_patch"] is None  # weights cannot say "only in the EU"
    replacement = eu.targeting["replace_fractional_with"]
    assert replacement["if"][:2] == [{"==": [{"var": "region"}, "eu"]}, WINNER]
    assert "fractional" in replacement["if"][2]  # everyone else stays in the split
    flag_set = applied(eu.targeting)
    assert served(flag_set, "eu") == WINNER
    assert found["region=us"].action is not Action.SHIP


def test_a_sample_ratio_mismatch_means_investigate_first() -> None:
    found = recommendations({WINNER: {"stt_ttfb_ms": -20.0}}, drop={WINNER: 0.2})["all"]
    assert found.action is Action.INVESTIGATE
    assert found.targeting is None
    assert "sample ratio mismatch" in found.message


def test_without_the_flag_definition_the_change_names_the_split() -> None:
    experiment = Experiment(sessions=2000, effects={WINNER: {"stt_ttfb_ms": -20.0}}, seed=4)
    df = load_sessions(MemoryEvents(*experiment.events()), "stt-provider", metrics=METRICS)
    found = analyze(df).periods[0].recommendations[0]
    assert found.action is Action.SHIP
    assert found.targeting is not None
    assert found.targeting["patch"] is None
    assert found.targeting["split_id"] == experiment.split_id
    assert found.targeting["replace_fractional_with"] == WINNER
