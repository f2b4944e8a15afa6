"""Asymptotic confidence sequences (Waudby-Smith et al. 2023) against GrowthBook's figures."""

from __future__ import annotations

import math

import pytest

from analysis.errors import AnalysisError
from analysis.inference import compare_means, compare_proportions
from analysis.sequential import always_valid_p_value, half_width, mixture_rho
from analysis.statistics import ProportionStats, SampleStats

CONTROL = SampleStats(n=3000, sum=1396.87, sum_squares=52377.9767)
TREATMENT = SampleStats(n=3461, sum=2422.7, sum_squares=134698.29)


def test_golden_sequential_relative_interval() -> None:
    # GrowthBook gbstats tests/frequentist/test_tests.py::test_sequential_test_runs
    relative = compare_means(CONTROL, TREATMENT, sequential=True, tuning_n=1000).relative
    assert relative.estimate == pytest.approx(0.50336, abs=5e-6)
    assert (relative.ci_low, relative.ci_high) == pytest.approx((-0.55844, 1.56516), abs=5e-6)
    assert relative.std_error == pytest.approx(0.33341, abs=5e-6)


def test_golden_sequential_proportion_interval() -> None:
    # GrowthBook gbstats test_sequential_test_runs_prop (default tuning parameter 5000)
    result = compare_proportions(
        ProportionStats(3000, 1396), ProportionStats(3461, 2422), sequential=True
    )
    relative = result.relative
    assert relative.estimate == pytest.approx(0.50386, abs=5e-6)
    assert (relative.ci_low, relative.ci_high) == pytest.approx((0.40098, 0.60675), abs=5e-6)


def test_rho_follows_eq_161() -> None:
    # by hand: rho = sqrt((-2 ln a + ln(-2 ln a + 1)) / N)
    expected = math.sqrt((-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5000)
    assert mixture_rho(0.05, 5000) == pytest.approx(expected)


@pytest.mark.parametrize("estimate", [0.0, 0.05, 0.1, 0.12, 0.2, 1.0])
def test_p_value_below_alpha_exactly_when_interval_excludes_zero(estimate: float) -> None:
    se, n = 0.03, 4000
    width = half_width(se, n, alpha=0.05, tuning_n=5000)
    p = always_valid_p_value(estimate, se, n, alpha=0.05, tuning_n=5000)
    assert (p <= 0.05) == (abs(estimate) > width)


def test_p_value_at_the_boundary_equals_alpha() -> None:
    width = half_width(0.02, 2500, alpha=0.05, tuning_n=1000)
    p = always_valid_p_value(width, 0.02, 2500, alpha=0.05, tuning_n=1000)
    assert p == pytest.approx(0.05)


def test_sequence_is_wider_than_the_fixed_horizon_interval() -> None:
    fixed = compare_means(CONTROL, TREATMENT).absolute
    sequential = compare_means(CONTROL, TREATMENT, sequential=True).absolute
    assert sequential.ci_low < fixed.ci_low
    assert sequential.ci_high > fixed.ci_high
    assert sequential.p_value >= fixed.p_value


def test_sequence_is_tightest_when_tuned_near_the_sample_size() -> None:
    # GrowthBook gbstats test_sequential_test_tuning_as_expected
    def width(tuning_n: float) -> float:
        relative = compare_means(CONTROL, TREATMENT, sequential=True, tuning_n=tuning_n).relative
        return relative.ci_high - relative.ci_low

    assert width(6461) < width(10_000) < width(10)


def test_non_positive_tuning_parameter_raises() -> None:
    with pytest.raises(AnalysisError):
        compare_means(CONTROL, TREATMENT, sequential=True, tuning_n=0)
