"""CUPED: theta pooled across arms, adjusted arms, reported variance reduction."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import StatError
from analysis.inference import compare_means
from analysis.statistics import SampleStats
from analysis.variance import CupedStats, cuped_adjust


def _arm(
    rng: np.random.Generator, n: int, effect: float, rho: float = 0.7
) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(10.0, 2.0, size=n)
    noise = rng.normal(0.0, 2.0 * np.sqrt(1 - rho**2), size=n)
    return 5.0 + effect + rho * (x - 10.0) + noise, x


def test_cuped_matches_a_direct_numpy_computation() -> None:
    # reference: theta = cov(y, x) / var(x) over both arms, y_adj = y - theta (x - mean x)
    rng = np.random.default_rng(21)
    (y_c, x_c), (y_t, x_t) = _arm(rng, 800, 0.0), _arm(rng, 900, 0.3)
    y, x = np.concatenate([y_c, y_t]), np.concatenate([x_c, x_t])
    theta = np.cov(y, x)[0, 1] / np.var(x, ddof=1)
    direct = compare_means(
        SampleStats.from_values(y_c - theta * (x_c - x.mean())),
        SampleStats.from_values(y_t - theta * (x_t - x.mean())),
    )
    result = cuped_adjust(CupedStats.from_values(y_c, x_c), CupedStats.from_values(y_t, x_t))
    adjusted = compare_means(result.control, result.treatment)
    assert result.theta == pytest.approx(theta)
    assert adjusted.absolute.estimate == pytest.approx(direct.absolute.estimate)
    assert adjusted.absolute.std_error == pytest.approx(direct.absolute.std_error)
    assert adjusted.relative.estimate == pytest.approx(direct.relative.estimate)


def test_variance_reduction_is_about_the_squared_correlation() -> None:
    rng = np.random.default_rng(22)
    (y_c, x_c), (y_t, x_t) = _arm(rng, 20_000, 0.0, 0.6), _arm(rng, 20_000, 0.1, 0.6)
    result = cuped_adjust(CupedStats.from_values(y_c, x_c), CupedStats.from_values(y_t, x_t))
    assert result.variance_reduction == pytest.approx(0.36, abs=0.02)


def test_adjusted_intervals_cover_a_known_effect() -> None:
    rng = np.random.default_rng(20240408)
    covered = []
    for _ in range(2000):
        (y_c, x_c), (y_t, x_t) = _arm(rng, 200, 0.0), _arm(rng, 200, 0.5)
        result = cuped_adjust(CupedStats.from_values(y_c, x_c), CupedStats.from_values(y_t, x_t))
        absolute = compare_means(result.control, result.treatment).absolute
        covered.append(absolute.ci_low <= 0.5 <= absolute.ci_high)
    assert 0.94 <= np.mean(covered) <= 0.96


def test_cuped_stats_pool_by_addition() -> None:
    rng = np.random.default_rng(23)
    y, x = rng.normal(size=50), rng.normal(size=50)
    pooled = CupedStats.from_values(y[:20], x[:20]) + CupedStats.from_values(y[20:], x[20:])
    assert pooled.covariance == pytest.approx(np.cov(y, x)[0, 1])


def test_constant_covariate_leaves_the_arms_unadjusted() -> None:
    control = CupedStats.from_values([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    treatment = CupedStats.from_values([2.0, 3.0, 4.0], [5.0, 5.0, 5.0])
    result = cuped_adjust(control, treatment)
    assert result.error is StatError.ZERO_VARIANCE
    assert (result.theta, result.variance_reduction) == (0.0, 0.0)
    assert result.control == control.metric


def test_empty_arm_is_no_data() -> None:
    empty = CupedStats.from_values([], [])
    assert cuped_adjust(empty, CupedStats.from_values([1.0, 2.0], [1.0, 3.0])).error is (
        StatError.NO_DATA
    )
