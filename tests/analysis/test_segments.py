"""Segments: effects per region (or any column) and Cochran's Q between them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic import METRICS, Experiment, MemoryEvents

from analysis import AnalysisError, analyze, cochran_q, load_sessions
from analysis import columns as col
from analysis.results import ExperimentResult, HeterogeneityResult

WINNER = "assemblyai-universal"


def frame(experiment: Experiment) -> pd.DataFrame:
    return load_sessions(MemoryEvents(*experiment.events()), "stt-provider", metrics=METRICS)


def q_of(result: ExperimentResult, metric: str, attribute: str = "region") -> HeterogeneityResult:
    return next(
        h for h in result.periods[0].heterogeneity if (h.metric, h.attribute) == (metric, attribute)
    )


def test_an_effect_in_one_region_only_is_heterogeneous() -> None:
    experiment = Experiment(sessions=3000, effects={(WINNER, "eu"): {"stt_ttfb_ms": -20.0}})
    result = analyze(frame(experiment), segment_by="region")
    q = q_of(result, "stt_ttfb_ms").heterogeneity
    assert q.p_value < 0.001
    assert q.i_squared > 0.9
    assert q.n_segments == 2
    eu, us = (
        next(s for s in result.periods[0].segments if s.level == level) for level in ("eu", "us")
    )
    effect = {
        s.level: next(c for c in s.comparisons if c.metric == "stt_ttfb_ms").comparison.absolute
        for s in (eu, us)
    }
    assert effect["eu"].ci_low < -20.0 < effect["eu"].ci_high
    assert effect["us"].ci_low < 0.0 < effect["us"].ci_high


def test_the_same_relative_effect_everywhere_is_homogeneous() -> None:
    result = analyze(
        frame(Experiment(sessions=3000, effects={WINNER: {"stt_ttfb_ms": -20.0}})),
        segment_by="region",
    )
    assert q_of(result, "stt_ttfb_ms").heterogeneity.p_value > 0.05


def test_heterogeneity_is_cochrans_q_on_the_levels_relative_effects() -> None:
    result = analyze(
        frame(Experiment(sessions=1500, effects={WINNER: {"stt_ttfb_ms": -9.0}})),
        segment_by="region",
    )
    segments = result.periods[0].segments
    effects = [
        next(c for c in s.comparisons if c.metric == "stt_ttfb_ms").comparison.relative
        for s in segments
    ]
    reference = cochran_q([e.estimate for e in effects], [e.std_error for e in effects])
    assert q_of(result, "stt_ttfb_ms").heterogeneity == reference


def test_segments_partition_the_period() -> None:
    df = frame(Experiment(sessions=1200, regions=("us", "eu", "apac")))
    result = analyze(df, segment_by=["region", "tenant_id"])
    period = result.periods[0]
    for attribute in ("region", "tenant_id"):
        sizes = [s.sessions for s in period.segments if s.attribute == attribute]
        assert sum(sizes) == period.period.sessions
    assert [s.level for s in period.segments if s.attribute == "region"] == ["apac", "eu", "us"]
    assert {h.attribute for h in period.heterogeneity} == {"region", "tenant_id"}


def test_any_column_added_to_the_frame_can_segment() -> None:
    df = frame(Experiment(sessions=800))
    df["plan"] = np.where(df[col.TENANT_ID].astype(str).str.len() % 2 == 0, "pro", "free")
    result = analyze(df, segment_by="plan")
    assert {s.level for s in result.periods[0].segments} == {"pro", "free"}
    assert {r.segment for r in result.periods[0].recommendations} == {
        "all",
        "plan=free",
        "plan=pro",
    }


def test_segment_p_values_are_corrected_within_the_segment() -> None:
    result = analyze(frame(Experiment(sessions=800)), segment_by="region")
    for segment in result.periods[0].segments:
        tested = [c for c in segment.comparisons if not c.guardrail]
        assert all(c.p_value_adjusted >= c.comparison.absolute.p_value for c in tested)
        assert all(c.quantiles == () for c in segment.comparisons)


def test_segmenting_by_a_missing_column_is_an_error() -> None:
    with pytest.raises(AnalysisError, match="plan"):
        analyze(frame(Experiment(sessions=50)), segment_by="plan")


def test_a_single_level_gives_a_too_few_groups_heterogeneity() -> None:
    result = analyze(frame(Experiment(sessions=300, regions=("eu",))), segment_by="region")
    assert q_of(result, "stt_ttfb_ms").heterogeneity.error is not None
