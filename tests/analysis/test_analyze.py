"""analyze: periods, health, tenant units, CUPED, corrections, degenerate data, JSON and frames."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis
from synthetic import (
    E2E,
    METRICS,
    STT_WEIGHTS,
    TTFB,
    TTS_WEIGHTS,
    Experiment,
    MemoryEvents,
    periods,
    write,
)

from analysis import AnalysisError, ErrorCode, StatError, analyze, load_sessions
from analysis import columns as col
from analysis.inference import Method
from analysis.results import Action, ExperimentResult, NoticeKind
from experiments.eventlog import KeyLayout

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "analysis-result.schema.json").read_text()
)
FASTER = {"assemblyai-universal": {"stt_ttfb_ms": -15.0}}


def frame(experiment: Experiment, flag_key: str = "stt-provider") -> pd.DataFrame:
    return load_sessions(MemoryEvents(*experiment.events()), flag_key, metrics=METRICS)


def comparison(result: ExperimentResult, metric: str, period: int = 0) -> Any:
    return next(c for c in result.periods[period].comparisons if c.metric == metric)


@pytest.mark.redis
def test_end_to_end_from_redis_finds_the_effect_and_leaves_static_sessions_out(
    redis_url: str, prefix: str
) -> None:
    experiment = Experiment(sessions=3000, effects=FASTER, static_share=0.1, fallback_share=0.02)
    with redis.Redis.from_url(redis_url) as client:
        write(client, KeyLayout(prefix=prefix), *experiment.events())
    df = load_sessions(redis_url, "stt-provider", key_prefix=prefix, metrics=METRICS)
    result = analyze(df)
    period = result.periods[0]
    split_sessions = int((df[col.ROUTING] == "split").sum())
    assert period.period.sessions == split_sessions < 3000
    assert sum(c.n for c in period.cohorts if c.metric == "stt_ttfb_ms") == split_sessions
    assert {(e.routing, e.reason) for e in result.excluded} == {
        ("static", "TARGETING_MATCH"), ("fallback", "ERROR"),
    }  # fmt: skip
    assert sum(e.sessions for e in result.excluded) == 3000 - split_sessions
    assert NoticeKind.EXCLUDED_SESSIONS in {n.kind for n in result.notices}
    ttfb = comparison(result, "stt_ttfb_ms")
    assert ttfb.comparison.method is Method.RATIO_DELTA
    assert ttfb.significant
    assert ttfb.comparison.absolute.ci_low < -15.0 < ttfb.comparison.absolute.ci_high
    assert period.control == "deepgram-nova-3"


def test_a_weight_change_splits_the_experiment_into_periods() -> None:
    first = Experiment(sessions=1500, prefix="a", flag_version="v1")
    second = Experiment(
        sessions=1500, prefix="b", flag_version="v2", seed=2,
        weights=(("deepgram-nova-3", 20), ("assemblyai-universal", 80)),
        start_ms=first.start_ms + 8 * 86_400_000,
    )  # fmt: skip
    df = load_sessions(MemoryEvents(*periods(first, second)), "stt-provider", metrics=METRICS)
    result = analyze(df)
    assert [p.period.weights for p in result.periods] == [
        (("deepgram-nova-3", 50.0), ("assemblyai-universal", 50.0)),
        (("deepgram-nova-3", 20.0), ("assemblyai-universal", 80.0)),
    ]
    assert [p.period.flag_versions for p in result.periods] == [("v1",), ("v2",)]
    assert NoticeKind.PERIODS in {n.kind for n in result.notices}
    assert not any(p.health.srm.flagged for p in result.periods)
    assert len(analyze(df, period="latest").periods) == 1
    pooled = analyze(df, period="pooled").periods
    assert len(pooled) == 1
    assert pooled[0].period.configurations == 2
    assert dict(pooled[0].period.weights) == pytest.approx(
        {"deepgram-nova-3": 35.0, "assemblyai-universal": 65.0}, abs=1e-9
    )  # the session-weighted average of 50/50 and 20/80 over 1500 sessions each


def test_srm_is_flagged_on_a_biased_sample() -> None:
    result = analyze(frame(Experiment(sessions=4000, drop={"assemblyai-universal": 0.2})))
    srm = result.periods[0].health.srm
    assert srm.flagged
    assert srm.p_value < 0.001
    assert result.periods[0].recommendations[0].action is Action.INVESTIGATE


def test_a_tenant_split_is_analysed_with_the_tenant_as_the_unit() -> None:
    experiment = Experiment(
        sessions=3000, flag_key="tts-provider", weights=TTS_WEIGHTS, bucket_unit="tenant_id",
        split_id="tts-provider/x", tenants=60, tenant_sd=30.0,
    )  # fmt: skip
    result = analyze(frame(experiment, "tts-provider"))
    period = result.periods[0]
    assert period.unit.clustered
    assert "tenant is the unit" in period.unit.description
    assert NoticeKind.CLUSTERED_UNIT in {n.kind for n in result.notices}
    ttfb = comparison(result, "stt_ttfb_ms")
    assert ttfb.comparison.method is Method.CLUSTER_DELTA
    assert ttfb.comparison.control.n_clusters + ttfb.comparison.treatment.n_clusters == 60
    assert sum(period.health.srm.observed) == 60  # SRM counts tenants, not sessions
    assert ttfb.quantiles == ()  # order-statistic intervals assume independent sessions
    naive = analyze(frame(experiment, "tts-provider").assign(**{col.BUCKET_UNIT: "targetingKey"}))
    # sessions of a tenant share its offset: treating them as independent understates the error
    assert (
        ttfb.comparison.absolute.std_error
        > 2 * comparison(naive, "stt_ttfb_ms").comparison.absolute.std_error
    )


def test_cuped_reduces_variance_on_correlated_data() -> None:
    experiment = Experiment(sessions=3000, pre_sessions=2000, tenant_sd=50.0, effects=FASTER)
    df = frame(experiment)
    plain, adjusted = analyze(df), analyze(df, cuped=True)
    before, after = comparison(plain, "stt_ttfb_ms"), comparison(adjusted, "stt_ttfb_ms")
    assert after.cuped is not None
    assert after.cuped.error is None
    assert after.cuped.coverage == 1.0
    assert after.cuped.variance_reduction > 0.3
    assert after.comparison.absolute.std_error < before.comparison.absolute.std_error
    assert after.comparison.absolute.ci_low < -15.0 < after.comparison.absolute.ci_high
    assert after.comparison.method is Method.RATIO_DELTA


def test_cuped_without_a_pre_period_says_so() -> None:
    result = analyze(frame(Experiment(sessions=400)), cuped=True)
    cuped = comparison(result, "stt_ttfb_ms").cuped
    assert cuped is not None
    assert cuped.error is StatError.NO_DATA
    assert cuped.variance_reduction == 0.0


def test_guardrails_are_tested_for_non_inferiority_outside_the_family() -> None:
    worse = {"assemblyai-universal": {"e2e_latency_ms": 120.0}}
    result = analyze(frame(Experiment(sessions=2000, effects=worse)))
    e2e = comparison(result, "e2e_latency_ms")
    assert e2e.guardrail
    assert e2e.p_value_adjusted is None
    assert e2e.non_inferiority is not None
    assert not e2e.non_inferiority.non_inferior  # 13% worse, margin 5%
    tested = [c for c in result.periods[0].comparisons if not c.guardrail]
    assert all(c.p_value_adjusted is not None for c in tested)


def test_holm_is_at_least_as_strict_as_benjamini_hochberg() -> None:
    df = frame(Experiment(sessions=1500, effects=FASTER))
    holm, bh = analyze(df), analyze(df, correction="bh")
    for h, b in zip(holm.periods[0].comparisons, bh.periods[0].comparisons, strict=True):
        if not h.guardrail:
            assert h.p_value_adjusted >= b.p_value_adjusted >= h.comparison.absolute.p_value


def test_sequential_intervals_are_always_valid_and_wider() -> None:
    df = frame(Experiment(sessions=1500, effects=FASTER))
    fixed, sequential = (
        comparison(analyze(df), "stt_ttfb_ms"),
        comparison(analyze(df, sequential=True, tuning_n=2000), "stt_ttfb_ms"),
    )
    assert sequential.comparison.absolute.tuning_n == 2000
    width = lambda e: e.ci_high - e.ci_low  # noqa: E731
    assert width(sequential.comparison.absolute) > width(fixed.comparison.absolute)


def test_the_flag_metadata_names_the_control() -> None:
    df = frame(Experiment(sessions=400, weights=tuple(reversed(STT_WEIGHTS))))
    assert analyze(df).periods[0].control == "assemblyai-universal"  # first variant of the split
    flag = {"metadata": {"control": "deepgram-nova-3"}}
    assert analyze(df, flag=flag).periods[0].control == "deepgram-nova-3"
    assert analyze(df, control="deepgram-nova-3").periods[0].control == "deepgram-nova-3"


def test_an_unknown_control_is_an_error() -> None:
    with pytest.raises(AnalysisError) as info:
        analyze(frame(Experiment(sessions=100)), control="whisper")
    assert info.value.code is ErrorCode.UNKNOWN_COHORT


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"correction": "bonferroni"}, "correction"),
        ({"period": "x"}, "period"),
    ],
)
def test_wrong_arguments_raise(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(AnalysisError, match=field):
        analyze(frame(Experiment(sessions=50)), **kwargs)


def test_a_frame_without_split_sessions_gives_an_error_result() -> None:
    df = frame(Experiment(sessions=50, static_share=1.0))
    result = analyze(df)
    assert result.error is StatError.NO_DATA
    assert result.periods == ()
    assert NoticeKind.NO_SPLIT in {n.kind for n in result.notices}
    validate(result.to_dict(), SCHEMA)


def test_degenerate_data_gives_error_enums_not_exceptions() -> None:
    df = frame(
        Experiment(sessions=40, weights=(("deepgram-nova-3", 1), ("assemblyai-universal", 99)))
    )
    df.loc[df[col.COHORT] == "assemblyai-universal", "task_success"] = np.nan
    result = analyze(df, metrics=METRICS)
    success = comparison(result, "task_success")
    assert success.error is StatError.NO_DATA
    assert math.isnan(success.comparison.absolute.estimate)
    kinds = {w.kind.value for w in result.periods[0].health.warnings}
    assert "small_sample" in kinds
    validate(result.to_dict(), SCHEMA)
    assert "NaN" not in result.to_json()


def test_to_frame_is_tidy() -> None:
    result = analyze(frame(Experiment(sessions=600, effects=FASTER)), segment_by="region")
    comparisons = result.to_frame()
    assert len(comparisons) == 4 * (1 + 2)  # metrics x (overall + two regions)
    assert set(comparisons["segment"]) == {"all", "region"}
    assert comparisons["p_value"].dtype == np.float64
    cohorts = result.to_frame("cohorts")
    assert set(cohorts["cohort"]) == {"deepgram-nova-3", "assemblyai-universal"}
    assert set(result.to_frame("recommendations")["segment"]) == {"all", "region=eu", "region=us"}


def test_json_matches_the_schema() -> None:
    experiment = Experiment(
        sessions=800, effects=FASTER, pre_sessions=300, static_share=0.1, tenant_sd=20.0
    )
    result = analyze(frame(experiment), segment_by=["region"], cuped=True, sequential=True)
    data = json.loads(result.to_json())
    assert data == result.to_dict()
    validate(data, SCHEMA)
    assert data["periods"][0]["comparisons"][0]["quantiles"][0]["q"] == 0.5


def test_the_table_names_what_matters() -> None:
    text = analyze(frame(Experiment(sessions=600, effects=FASTER)), segment_by="region").to_text()
    for needle in ("stt_ttfb_ms", "deepgram-nova-3", "SRM p", "heterogeneity by region", "[all]"):
        assert needle in text


def test_metrics_can_be_named() -> None:
    result = analyze(frame(Experiment(sessions=300)), metrics=["stt_ttfb_ms", E2E])
    assert [m.name for m in result.metrics] == ["stt_ttfb_ms", "e2e_latency_ms"]
    with pytest.raises(AnalysisError):
        analyze(frame(Experiment(sessions=30)), metrics=["no_such_metric"])
    assert TTFB.name == "stt_ttfb_ms"


def validate(
    value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, path: str = "$"
) -> None:
    """A JSON Schema (2020-12) validator for the keywords our schema uses."""
    root = root or schema
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        validate(value, target, root, path)
        return
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                validate(value, option, root, path)
            except AssertionError as exc:
                errors.append(str(exc))
            else:
                break
        else:
            raise AssertionError(f"{path}: matches no anyOf option: {errors}")
    _check_keywords(value, schema, root, path)


_TYPES = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
}  # fmt: skip


def _check_keywords(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> None:
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert any(_TYPES[t](value) for t in types), f"{path}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in {schema['enum']}"
    if "const" in schema:
        assert value == schema["const"], f"{path}: {value!r} != {schema['const']!r}"
    if "minimum" in schema and _TYPES["number"](value):
        assert value >= schema["minimum"], f"{path}: {value} < {schema['minimum']}"
    if isinstance(value, dict):
        _check_object(value, schema, root, path)
    if isinstance(value, list):
        assert len(value) >= schema.get("minItems", 0), f"{path}: too few items"
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items", {})
            assert sub is not False, f"{path}[{i}]: no item allowed here"
            validate(item, sub, root, f"{path}[{i}]")


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str
) -> None:
    missing = [key for key in schema.get("required", []) if key not in value]
    assert not missing, f"{path}: missing {missing}"
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", {})
    for key, item in value.items():
        if key in properties:
            validate(item, properties[key], root, f"{path}.{key}")
        else:
            assert extra is not False, f"{path}: unexpected property {key!r}"
            validate(item, extra, root, f"{path}.{key}")


def test_the_validator_rejects_what_the_schema_forbids() -> None:
    result = analyze(frame(Experiment(sessions=200))).to_dict()
    validate(result, SCHEMA)
    broken = json.loads(json.dumps(result))
    broken["periods"][0]["comparisons"][0]["comparison"]["method"] = "magic"
    with pytest.raises(AssertionError, match="magic"):
        validate(broken, SCHEMA)
    broken = json.loads(json.dumps(result))
    broken["periods"][0]["surprise"] = 1
    with pytest.raises(AssertionError, match="surprise"):
        validate(broken, SCHEMA)
