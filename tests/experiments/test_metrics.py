"""The metric registry: shipped defaults, user files merged over them, value rules."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from experiments.metrics import (
    Direction,
    Metric,
    MetricRegistryError,
    MetricType,
    Rollup,
    load_default_registry,
    load_metric_registry,
    parse_metric_registry,
)

LATENCIES = (
    "stt_ttfb_ms", "eou_delay_ms", "llm_ttft_ms", "tts_ttfb_ms", "s2s_ttft_ms", "e2e_latency_ms",
)  # fmt: skip
CONTINUOUS = (
    "wer", "mos", "csat", "cost_usd", "duration_s", "stt_audio_seconds", "tts_characters",
)  # fmt: skip


def metric(name: str) -> Metric:
    found = load_default_registry().get(name)
    assert found is not None
    return found


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "metrics.yaml"
    path.write_text(text)
    return path


def test_the_defaults_hold_every_metric_of_the_issue() -> None:
    registry = load_default_registry()
    expected = {*LATENCIES, "interruptions", "errors", "task_success", "error_occurred",
                *CONTINUOUS}  # fmt: skip
    assert {m.name for m in registry} == expected
    assert len(registry) == len(expected)


@pytest.mark.parametrize("name", LATENCIES)
def test_latencies_are_per_turn_means_in_ms_lower_is_better(name: str) -> None:
    latency = metric(name)
    assert (latency.type, latency.unit, latency.direction, latency.rollup) == (
        MetricType.LATENCY, "ms", Direction.LOWER, Rollup.MEAN,
    )  # fmt: skip
    assert (latency.minimum, latency.maximum) == (0, 600_000)


@pytest.mark.parametrize(
    ("name", "kind", "rollup"),
    [
        ("interruptions", MetricType.COUNT, Rollup.SUM),
        ("errors", MetricType.COUNT, Rollup.SUM),
        ("task_success", MetricType.PROPORTION, Rollup.LAST),
        ("error_occurred", MetricType.PROPORTION, Rollup.MAX),
        ("mos", MetricType.CONTINUOUS, Rollup.MEAN),
        ("cost_usd", MetricType.CONTINUOUS, Rollup.SUM),
        ("duration_s", MetricType.CONTINUOUS, Rollup.LAST),
        ("tts_characters", MetricType.CONTINUOUS, Rollup.SUM),
    ],
)
def test_types_and_rollups(name: str, kind: MetricType, rollup: Rollup) -> None:
    assert (metric(name).type, metric(name).rollup) == (kind, rollup)


def test_guardrails_carry_a_margin() -> None:
    guardrails = load_default_registry().guardrails()
    assert {g.name for g in guardrails} == {"e2e_latency_ms", "error_occurred"}
    assert all(g.non_inferiority_margin is not None for g in guardrails)


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("e2e_latency_ms", 905.0, 905.0),
        ("e2e_latency_ms", 0, 0.0),
        ("e2e_latency_ms", 600_000, 600_000.0),
        ("interruptions", 2, 2.0),
        ("task_success", True, 1.0),
        ("task_success", False, 0.0),
        ("error_occurred", 1, 1.0),
        ("error_occurred", 0.0, 0.0),
        ("mos", 1, 1.0),
        ("mos", 4.2, 4.2),
        ("wer", 1.3, 1.3),
    ],
)
def test_valid_values_are_stored_as_floats(name: str, value: object, stored: float) -> None:
    assert metric(name).value_of(value) == stored


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("e2e_latency_ms", -1.0, "-1.0 is outside [0, 600000]"),
        ("e2e_latency_ms", 600_001, "600001 is outside [0, 600000]"),
        ("mos", 7.0, "7.0 is outside [1, 5]"),
        ("mos", 0, "0 is outside [1, 5]"),
        ("cost_usd", -0.01, "-0.01 is outside [0, inf)"),
        ("e2e_latency_ms", math.nan, "must be a finite number, got nan"),
        ("e2e_latency_ms", math.inf, "must be a finite number, got inf"),
        ("mos", -math.inf, "must be a finite number, got -inf"),
        ("e2e_latency_ms", True, "must be a number, got the boolean true"),
        ("e2e_latency_ms", "905", "must be a number, got a string"),
        ("e2e_latency_ms", None, "must be a number, got null"),
        ("e2e_latency_ms", [1], "must be a number, got an array"),
        ("interruptions", 2.5, "a count must be an integer, got 2.5"),
        ("interruptions", 2.0, "a count must be an integer, got 2.0"),
        ("task_success", 0.5, "a proportion must be true, false, 0 or 1, got 0.5"),
        ("task_success", 2, "a proportion must be true, false, 0 or 1, got 2"),
        ("tts_characters", 2**60, "is too large"),
    ],
)
def test_invalid_values_name_the_problem(name: str, value: object, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        metric(name).value_of(value)


def test_a_user_file_adds_metrics_and_overrides_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "metrics:\n"
        "  barge_in_ms: {type: latency, unit: ms, direction: lower, rollup: mean, min: 0}\n"
        "  mos: {guardrail: true, non_inferiority_margin: 0.02}\n",
    )
    registry = load_metric_registry(path)
    assert registry.get("barge_in_ms") == Metric(
        "barge_in_ms", MetricType.LATENCY, "ms", Direction.LOWER, Rollup.MEAN, minimum=0
    )
    mos = registry.get("mos")
    assert mos is not None
    assert (mos.guardrail, mos.non_inferiority_margin, mos.maximum) == (True, 0.02, 5)
    assert "stt_ttfb_ms" in registry
    assert str(path) in registry.source


@pytest.mark.parametrize(
    ("entry", "field", "problem"),
    [
        ("{unit: ms, direction: lower, rollup: mean}", "type", "must be one of"),
        ("{type: timing, unit: ms, direction: lower, rollup: mean}", "type", "got 'timing'"),
        ("{type: latency, direction: lower, rollup: mean}", "unit", "non-empty string"),
        ("{type: latency, unit: ms, direction: down, rollup: mean}", "direction", "'down'"),
        ("{type: latency, unit: ms, direction: lower, rollup: median}", "rollup", "'median'"),
        ("{type: latency, unit: ms, direction: lower, rollup: mean, min: x}", "min", "finite"),
        ("{type: latency, unit: ms, direction: lower, rollup: mean, min: 5, max: 1}", "min",
         "greater than max"),
        ("{type: latency, unit: ms, direction: lower, rollup: mean, guardrail: 1}", "guardrail",
         "true or false"),
        ("{type: latency, unit: ms, direction: lower, rollup: mean, non_inferiority_margin: -1}",
         "non_inferiority_margin", ">= 0"),
        ("{type: latency, unit: ms, direction: lower, rollup: mean, colour: red}", "colour",
         "unknown field"),
        ("{type: proportion, unit: s, direction: lower, rollup: sum}", "rollup", "mean, last"),
        ("{type: proportion, unit: s, direction: lower, rollup: max, max: 1}", "min", "no bounds"),
    ],
)  # fmt: skip
def test_a_bad_entry_names_file_metric_and_field(
    tmp_path: Path, entry: str, field: str, problem: str
) -> None:
    path = write(tmp_path, f"metrics:\n  my_metric: {entry}\n")
    with pytest.raises(MetricRegistryError, match=problem) as caught:
        load_metric_registry(path)
    assert f"metric 'my_metric', field '{field}'" in caught.value.message
    assert str(path) in caught.value.message
    assert caught.value.context["field"] == field


def test_an_override_that_breaks_a_default_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics:\n  mos: {min: 6}\n")
    with pytest.raises(MetricRegistryError, match="metric 'mos', field 'min': 6 is greater"):
        load_metric_registry(path)


@pytest.mark.parametrize(
    "text", ["[]", "metrics: 3", "other: {}", "metrics: {}\nextra: 1", ": bad: yaml: ["]
)
def test_a_malformed_file_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(MetricRegistryError, match="file "):
        load_metric_registry(write(tmp_path, text))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MetricRegistryError, match="cannot read"):
        load_metric_registry(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", ["Mos", "9lives", "", "a-b", "x" * 65])
def test_metric_names_are_lower_snake_case(name: str) -> None:
    entry = {"type": "count", "unit": "x", "direction": "lower", "rollup": "sum"}
    with pytest.raises(MetricRegistryError, match="field 'name'"):
        parse_metric_registry({name: entry}, source="<test>")
