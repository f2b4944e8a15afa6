"""Sample sizes against statsmodels' power classes; sequential and still-needed variants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from analysis.errors import AnalysisError, StatError
from analysis.inference import compare_means
from analysis.power import sample_size_mean, sample_size_proportion, sessions_still_needed
from analysis.sequential import half_width
from analysis.statistics import SampleStats


@pytest.mark.parametrize(
    ("mean", "variance", "mde", "relative"),
    [(10.0, 4.0, 0.5, False), (300.0, 90.0**2, 0.05, True), (1.0, 1.0, 1.0, False)],
)
def test_means_match_statsmodels_ttest_ind_power(
    mean: float, variance: float, mde: float, relative: bool
) -> None:
    # reference: TTestIndPower().solve_power(effect_size = mde / sd), rounded up
    d = (mde * mean if relative else mde) / math.sqrt(variance)
    expected = math.ceil(TTestIndPower().solve_power(d, alpha=0.05, power=0.8))
    result = sample_size_mean(mean, variance, mde, relative=relative)
    assert result.per_cohort == expected
    assert result.total == 2 * expected


@pytest.mark.parametrize(
    ("rate", "mde", "relative"), [(0.2, 0.02, False), (0.05, 0.1, True), (0.5, -0.01, False)]
)
def test_proportions_match_statsmodels_normal_ind_power(
    rate: float, mde: float, relative: bool
) -> None:
    # reference: NormalIndPower with effect size delta / sqrt((p1 q1 + p2 q2) / 2), rounded up
    target = rate * (1 + mde) if relative else rate + mde
    pooled_sd = math.sqrt((rate * (1 - rate) + target * (1 - target)) / 2)
    effect_size = abs(target - rate) / pooled_sd
    expected = math.ceil(NormalIndPower().solve_power(effect_size, alpha=0.05, power=0.8))
    assert sample_size_proportion(rate, mde, relative=relative).per_cohort == expected


def test_alpha_and_power_are_honoured() -> None:
    expected = math.ceil(TTestIndPower().solve_power(0.2, alpha=0.01, power=0.9))
    assert sample_size_mean(0.0, 1.0, 0.2, alpha=0.01, power=0.9).per_cohort == expected


def test_sequential_size_puts_half_width_plus_power_margin_at_the_mde() -> None:
    result = sample_size_mean(10.0, 4.0, 0.5, sequential=True)
    n = result.per_cohort

    def reach(size: int) -> float:
        se = math.sqrt(2 * 4.0 / size)
        return half_width(se, 2 * size, alpha=0.05, tuning_n=2 * size) + 0.8416212 * se

    assert reach(n) <= 0.5 < reach(n - 1)


def test_sequential_needs_more_sessions_than_fixed_horizon() -> None:
    fixed = sample_size_proportion(0.2, 0.02)
    sequential = sample_size_proportion(0.2, 0.02, sequential=True)
    assert fixed.per_cohort < sequential.per_cohort < 2.5 * fixed.per_cohort


def test_mistuned_sequence_needs_more_sessions() -> None:
    tuned = sample_size_proportion(0.2, 0.02, sequential=True)
    mistuned = sample_size_proportion(0.2, 0.02, sequential=True, tuning_n=500)
    assert mistuned.per_cohort > tuned.per_cohort


@pytest.mark.parametrize(
    "kwargs",
    [
        {"baseline_mean": 1.0, "baseline_variance": 0.0, "mde": 0.1},
        {"baseline_mean": 0.0, "baseline_variance": 1.0, "mde": 0.1, "relative": True},
        {"baseline_mean": 1.0, "baseline_variance": 1.0, "mde": 0.0},
        {"baseline_mean": 1.0, "baseline_variance": 1.0, "mde": 0.1, "power": 1.0},
    ],
)
def test_invalid_power_inputs_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(AnalysisError):
        sample_size_mean(**kwargs)  # type: ignore[arg-type]


def test_rate_pushed_outside_zero_one_raises() -> None:
    with pytest.raises(AnalysisError):
        sample_size_proportion(0.95, 0.1)


def _observed(shift: float, n: int = 500) -> tuple[SampleStats, SampleStats]:
    control = SampleStats.from_values(np.tile([1.0, 2.0, 3.0, 4.0, 5.0], n // 5))
    values = np.tile([1.0, 2.0, 3.0, 4.0, 5.0], n // 5) + shift
    return control, SampleStats.from_values(values)


def test_still_needed_matches_normal_ind_power_at_the_observed_effect() -> None:
    # reference: NormalIndPower at effect size = observed effect / observed sd, both cohorts
    control, treatment = _observed(0.1)
    needed = sessions_still_needed(compare_means(control, treatment))
    effect_size = 0.1 / control.std
    per_cohort = NormalIndPower().solve_power(effect_size, alpha=0.05, power=0.8)
    assert needed.total == pytest.approx(2 * per_cohort, abs=2)
    assert needed.additional == needed.total - 1000


def test_still_needed_is_zero_once_powered() -> None:
    needed = sessions_still_needed(compare_means(*_observed(1.0)))
    assert needed.additional == 0
    assert needed.scale < 1


def test_still_needed_sequential_needs_more() -> None:
    control, treatment = _observed(0.1)
    fixed = sessions_still_needed(compare_means(control, treatment))
    sequential = sessions_still_needed(compare_means(control, treatment, sequential=True))
    assert sequential.total is not None
    assert fixed.total is not None
    assert sequential.total > fixed.total


def test_still_needed_with_zero_effect_is_an_error() -> None:
    needed = sessions_still_needed(compare_means(*_observed(0.0)))
    assert needed.error is StatError.ZERO_EFFECT
    assert needed.additional is None
