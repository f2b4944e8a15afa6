"""Sufficient statistics: moments from sums, pooling with `+`, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import AnalysisError
from analysis.statistics import ClusterStats, ProportionStats, RatioStats, SampleStats


def test_sample_stats_moments_match_numpy() -> None:
    x = np.random.default_rng(1).normal(3.0, 2.0, size=500)
    stats = SampleStats.from_values(x)
    assert stats.mean == pytest.approx(x.mean())
    assert stats.variance == pytest.approx(x.var(ddof=1))
    assert stats.std == pytest.approx(x.std(ddof=1))


def test_sample_stats_pool_by_addition() -> None:
    x = np.random.default_rng(2).exponential(size=300)
    pooled = SampleStats.from_values(x[:100]) + SampleStats.from_values(x[100:])
    assert pooled.n == 300
    assert pooled.variance == pytest.approx(x.var(ddof=1))


@pytest.mark.parametrize("n", [0, 1])
def test_sample_stats_undefined_moments_read_as_zero(n: int) -> None:
    # gbstats convention: inference reports the degenerate case, the moments stay finite
    stats = SampleStats(n, 2.0 * n, 4.0 * n)
    assert stats.variance == 0.0
    assert np.isfinite(stats.mean)


def test_sample_stats_reject_negative_n() -> None:
    with pytest.raises(AnalysisError):
        SampleStats(-1, 0.0, 0.0)


def test_sample_stats_reject_nan_values() -> None:
    with pytest.raises(AnalysisError):
        SampleStats.from_values([1.0, float("nan")])


def test_proportion_stats_variance_is_bernoulli() -> None:
    stats = ProportionStats.from_values([1, 0, 0, 1, 1])
    assert (stats.n, stats.successes) == (5, 3)
    assert stats.variance == pytest.approx(0.6 * 0.4)


def test_proportion_stats_reject_successes_above_n() -> None:
    with pytest.raises(AnalysisError):
        ProportionStats(3, 4)


def test_proportion_stats_pool_by_addition() -> None:
    assert ProportionStats(10, 3) + ProportionStats(5, 1) == ProportionStats(15, 4)


def test_ratio_stats_delta_variance_matches_linearisation() -> None:
    # Deng, Knoblich and Yu (2018): var(sum x / sum y) ~ var(x - r y) / (n mean_y^2)
    rng = np.random.default_rng(3)
    y = rng.integers(1, 8, size=1000).astype(float)
    x = y * rng.gamma(2.0, 150.0, size=1000)
    stats = RatioStats.from_values(x, y)
    r = x.sum() / y.sum()
    assert stats.mean == pytest.approx(r)
    assert stats.variance == pytest.approx(np.var(x - r * y, ddof=1) / y.mean() ** 2)


def test_ratio_stats_reject_mismatched_lengths() -> None:
    with pytest.raises(AnalysisError):
        RatioStats.from_values([1.0, 2.0], [1.0])


def test_cluster_stats_group_units_by_cluster() -> None:
    stats = ClusterStats.from_values([1.0, 3.0, 5.0, 7.0], ["a", "b", "a", "b"])
    assert (stats.n, stats.n_units) == (2, 4)
    assert (stats.sum_x, stats.sum_y) == (16.0, 4.0)
    assert stats.sum_x2 == 6.0**2 + 10.0**2
    assert stats.mean == 4.0


def test_cluster_stats_pool_by_addition() -> None:
    a = ClusterStats.from_values([1.0, 2.0], ["a", "b"])
    b = ClusterStats.from_values([3.0], ["c"])
    pooled = a + b
    assert (pooled.n, pooled.n_units, pooled.sum_x) == (3, 3, 6.0)
