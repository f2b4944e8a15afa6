"""experiment_stats: the frame read once into frozen statistics objects, which the rest takes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from synthetic import METRICS, Experiment, MemoryEvents

from analysis import AnalysisSpec, load_sessions
from analysis.experiment import experiment_result
from analysis.experiment_stats import ExperimentStats
from analysis.frame_stats import experiment_stats
from analysis.statistics import ProportionStats, RatioStats, SampleStats

SPEC = AnalysisSpec(segment_by=("region",), cuped=True)


@pytest.fixture(scope="module")
def stats() -> ExperimentStats:
    experiment = Experiment(sessions=1200, pre_sessions=300, tenant_sd=20.0, seed=9)
    df = load_sessions(MemoryEvents(*experiment.events()), "stt-provider", metrics=METRICS)
    return experiment_stats(df, SPEC)


def test_each_metric_gets_its_statistics_class(stats: ExperimentStats) -> None:
    (period,) = stats.periods
    kinds = {name: type(arm.stats) for name, by_cohort in period.arms.items()
             for arm in by_cohort.values()}  # fmt: skip
    assert kinds == {
        "stt_ttfb_ms": RatioStats, "e2e_latency_ms": RatioStats,
        "interruptions": SampleStats, "task_success": ProportionStats,
    }  # fmt: skip


@pytest.mark.parametrize("metric", ["stt_ttfb_ms", "interruptions", "task_success"])
def test_the_levels_of_a_segment_pool_to_the_period(stats: ExperimentStats, metric: str) -> None:
    (period,) = stats.periods
    (regions,) = period.segmentations
    for cohort, arm in period.arms[metric].items():
        parts = [level.arms[metric][cohort].stats for level in regions.levels]
        pooled = parts[0] + parts[1]
        expected = dataclasses.astuple(arm.stats)
        assert dataclasses.astuple(pooled) == pytest.approx(expected, rel=1e-12)


def test_only_whole_periods_carry_effect_quantiles(stats: ExperimentStats) -> None:
    (period,) = stats.periods
    arm = period.arms["stt_ttfb_ms"]["deepgram-nova-3"]
    assert [q.q for q in arm.quantiles] == [0.5, 0.95]
    level = period.segmentations[0].levels[0]
    assert level.arms["stt_ttfb_ms"]["deepgram-nova-3"].quantiles == ()


def test_cuped_sums_come_with_a_covered_metric(stats: ExperimentStats) -> None:
    (period,) = stats.periods
    assert period.coverage["stt_ttfb_ms"] == 1.0
    arm = period.arms["stt_ttfb_ms"]["deepgram-nova-3"]
    assert arm.cuped is not None
    assert arm.cuped.n == arm.stats.n


def test_the_result_is_computed_from_the_objects_alone(stats: ExperimentStats) -> None:
    result = experiment_result(stats, SPEC)
    assert [s.level for s in result.periods[0].segments] == ["eu", "us"]
    assert result.settings is SPEC


def test_the_steps_after_the_frame_import_no_pandas() -> None:
    steps = "effects, segments, split_health, recommend, cohorts, experiment_stats, results"
    code = f"import sys; from analysis import {steps}; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
