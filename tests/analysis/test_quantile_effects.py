"""Quantiles and quantile effects by the order-statistic method of Deng, Knoblich and Yu (2018)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.errors import AnalysisError, StatError
from analysis.quantiles import compare_quantiles, quantile_estimate, quantile_estimates


def test_point_estimate_is_the_inverse_cdf_sample_quantile() -> None:
    x = np.random.default_rng(1).lognormal(size=999)
    for estimate in quantile_estimates(x, (0.5, 0.95, 0.99)):
        assert estimate.estimate == np.quantile(x, estimate.q, method="inverted_cdf")


def test_interval_ends_are_the_order_statistics_of_dky_ranks() -> None:
    # by hand: n q -/+ 1.96 sqrt(n q (1 - q)) = 50 -/+ 9.8 -> ranks 40 and 60 of 1..100
    estimate = quantile_estimate(np.arange(100, 0, -1, dtype=float), 0.5)
    assert (estimate.ci_low, estimate.estimate, estimate.ci_high) == (40.0, 50.0, 60.0)
    assert estimate.std_error == pytest.approx(20.0 / (2 * stats.norm.ppf(0.975)))


def test_absolute_effect_adds_the_cohort_variances() -> None:
    rng = np.random.default_rng(2)
    c, t = rng.exponential(size=3000), rng.exponential(1.2, size=3000)
    result = compare_quantiles(c, t, 0.95)
    expected = math.hypot(result.control.std_error, result.treatment.std_error)
    assert result.absolute.std_error == pytest.approx(expected)
    assert result.absolute.estimate == result.treatment.estimate - result.control.estimate


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_effect_intervals_cover_a_known_quantile_shift(q: float) -> None:
    # lognormal latencies, treatment 10% slower: the true effect is 0.1 * exp(z_q)
    rng = np.random.default_rng(20240407)
    control = rng.lognormal(0.0, 1.0, size=(2000, 2000))
    treatment = 1.1 * rng.lognormal(0.0, 1.0, size=(2000, 2000))
    truth = 0.1 * math.exp(stats.norm.ppf(q))
    results = [compare_quantiles(c, t, q) for c, t in zip(control, treatment, strict=True)]
    absolute = np.mean([r.absolute.ci_low <= truth <= r.absolute.ci_high for r in results])
    relative = np.mean([r.relative.ci_low <= 0.1 <= r.relative.ci_high for r in results])
    assert 0.93 <= absolute <= 0.97
    assert 0.93 <= relative <= 0.97


def test_too_few_values_for_a_tail_quantile_is_an_error() -> None:
    # p99 of 100 values: the upper rank 99 + 1.95 exceeds n
    estimate = quantile_estimate(np.arange(100.0), 0.99)
    assert estimate.error is StatError.TOO_FEW_SAMPLES
    assert math.isnan(estimate.ci_high)
    assert estimate.estimate == 98.0


def test_empty_cohort_gives_no_data_effect() -> None:
    result = compare_quantiles([], np.arange(50.0), 0.5)
    assert result.absolute.error is StatError.NO_DATA
    assert result.relative.error is StatError.NO_DATA


def test_constant_values_give_zero_variance() -> None:
    result = compare_quantiles(np.ones(100), np.ones(100), 0.5)
    assert result.absolute.error is StatError.ZERO_VARIANCE


def test_zero_control_quantile_fails_only_the_relative_effect() -> None:
    rng = np.random.default_rng(3)
    control = rng.normal(size=1001)
    control -= np.median(control)
    result = compare_quantiles(control, rng.normal(size=1000), 0.5)
    assert result.absolute.ok
    assert result.relative.error is StatError.CONTROL_MEAN_ZERO


def test_quantile_outside_zero_one_raises() -> None:
    with pytest.raises(AnalysisError):
        quantile_estimate(np.arange(10.0), 1.0)
