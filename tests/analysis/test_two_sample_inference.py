"""Two-sample comparisons: golden numbers, independent references, degenerate data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion as sm_proportion

from analysis.errors import AnalysisError, StatError
from analysis.inference import (
    Comparison,
    Method,
    compare,
    compare_clusters,
    compare_means,
    compare_proportions,
    compare_ratios,
    t_sf,
)
from analysis.statistics import ClusterStats, ProportionStats, RatioStats, SampleStats

CONTROL = SampleStats(n=3407, sum=1396.87, sum_squares=52377.9767)
TREATMENT = SampleStats(n=3461, sum=2422.7, sum_squares=134698.29)


def _all_numbers(result: Comparison) -> list[float]:
    return [
        getattr(estimate, field)
        for estimate in (result.absolute, result.relative)
        for field in ("estimate", "std_error", "ci_low", "ci_high", "p_value")
    ]


def test_golden_relative_effect() -> None:
    # GrowthBook gbstats tests/frequentist/test_tests.py::test_two_sided_ttest (issue 4):
    # delta-method variance, Student's t with Welch-Satterthwaite df
    relative = compare_means(CONTROL, TREATMENT).relative
    assert relative.estimate == pytest.approx(0.70732, abs=5e-6)
    assert (relative.ci_low, relative.ci_high) == pytest.approx((-0.03526, 1.44989), abs=5e-6)
    assert relative.p_value == pytest.approx(0.06191, abs=5e-6)
    assert relative.std_error == pytest.approx(0.37879, abs=5e-6)


def test_golden_absolute_effect() -> None:
    # GrowthBook gbstats test_two_sided_ttest_absolute (issue 4)
    absolute = compare_means(CONTROL, TREATMENT).absolute
    assert absolute.estimate == pytest.approx(0.29)
    assert (absolute.ci_low, absolute.ci_high) == pytest.approx((0.04538, 0.53462), abs=5e-6)
    assert absolute.p_value == pytest.approx(0.02016, abs=5e-6)
    assert absolute.std_error == pytest.approx(0.12478, abs=5e-6)


def test_welch_matches_scipy_ttest_ind_from_stats() -> None:
    # reference: scipy.stats.ttest_ind_from_stats(equal_var=False)
    rng = np.random.default_rng(7)
    a, b = rng.normal(10, 3, size=40), rng.normal(11, 6, size=25)
    ref = stats.ttest_ind_from_stats(
        b.mean(), b.std(ddof=1), b.size, a.mean(), a.std(ddof=1), a.size, equal_var=False
    )
    result = compare_means(SampleStats.from_values(a), SampleStats.from_values(b)).absolute
    assert result.estimate / result.std_error == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_welch_interval_matches_scipy_ttest_ind() -> None:
    # reference: scipy.stats.ttest_ind(equal_var=False).confidence_interval (scipy >= 1.11)
    rng = np.random.default_rng(8)
    a, b = rng.normal(0, 1, size=30), rng.normal(0.5, 2, size=50)
    ref = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.9)
    result = compare_means(SampleStats.from_values(a), SampleStats.from_values(b), alpha=0.1)
    assert (result.absolute.ci_low, result.absolute.ci_high) == pytest.approx(tuple(ref))


@pytest.mark.parametrize(("shift", "order"), [(0.33, 1e-46), (0.8, 1e-216)])
def test_tiny_p_value_keeps_precision(shift: float, order: float) -> None:
    control = SampleStats.from_values(np.tile([0.0, 1.0], 500))
    treatment = SampleStats.from_values(np.tile([0.0, 1.0], 500) + shift)
    absolute = compare_means(control, treatment).absolute
    t_stat = absolute.estimate / absolute.std_error
    expected = 2 * stats.t.sf(t_stat, absolute.df)  # survival function, not 1 - cdf
    assert order / 100 < absolute.p_value < order * 100
    assert absolute.p_value == pytest.approx(expected, rel=1e-9)


def test_t_sf_matches_scipy_far_in_the_tail() -> None:
    assert t_sf(40.0, 6000.0) == pytest.approx(stats.t.sf(40.0, 6000.0), rel=1e-9)
    assert t_sf(12.0, math.inf) == pytest.approx(stats.norm.sf(12.0), rel=1e-9)


def test_proportions_match_statsmodels_wald() -> None:
    # reference: statsmodels test_proportions_2indep / confint_proportions_2indep, method="wald"
    result = compare_proportions(ProportionStats(1000, 130), ProportionStats(1100, 170)).absolute
    ref = sm_proportion.test_proportions_2indep(170, 1100, 130, 1000, method="wald", compare="diff")
    low, high = sm_proportion.confint_proportions_2indep(
        170, 1100, 130, 1000, method="wald", compare="diff"
    )
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high))
    assert math.isinf(result.df)


def test_relative_proportion_uses_delta_method_with_normal_quantile() -> None:
    # by hand: var = p_t(1-p_t)/(p_c^2 n_t) + p_c(1-p_c) p_t^2 / (p_c^4 n_c), z_0.975
    p_c, p_t, n_c, n_t = 0.13, 170 / 1100, 1000, 1100
    var = p_t * (1 - p_t) / (p_c**2 * n_t) + p_c * (1 - p_c) * p_t**2 / (p_c**4 * n_c)
    relative = compare_proportions(ProportionStats(1000, 130), ProportionStats(1100, 170)).relative
    assert relative.estimate == pytest.approx(p_t / p_c - 1)
    assert relative.ci_high == pytest.approx(p_t / p_c - 1 + stats.norm.ppf(0.975) * var**0.5)
    assert relative.p_value == pytest.approx(2 * stats.norm.sf((p_t / p_c - 1) / var**0.5))


def test_ratio_metric_with_unit_denominators_equals_welch() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(5, 1, size=200), rng.normal(5.3, 1, size=300)
    ones_a, ones_b = np.ones_like(a), np.ones_like(b)
    ratio = compare_ratios(RatioStats.from_values(a, ones_a), RatioStats.from_values(b, ones_b))
    means = compare_means(SampleStats.from_values(a), SampleStats.from_values(b))
    assert _all_numbers(ratio) == pytest.approx(_all_numbers(means))


def test_ratio_metric_variance_includes_covariance_term() -> None:
    # by hand: the absolute variance is the sum of the arms' linearised variances over n
    rng = np.random.default_rng(10)
    y_c, y_t = rng.integers(1, 6, size=400), rng.integers(1, 6, size=400)
    x_c, x_t = y_c * rng.gamma(4, 50, size=400), y_t * rng.gamma(4, 55, size=400)
    result = compare_ratios(RatioStats.from_values(x_c, y_c), RatioStats.from_values(x_t, y_t))

    def var_of_ratio(x: np.ndarray, y: np.ndarray) -> float:
        r = x.sum() / y.sum()
        return float(np.var(x - r * y, ddof=1) / (y.mean() ** 2 * x.size))

    expected = var_of_ratio(x_c, y_c) + var_of_ratio(x_t, y_t)
    assert result.absolute.std_error**2 == pytest.approx(expected)
    assert result.method is Method.RATIO_DELTA


def test_cluster_analysis_counts_tenants_as_units() -> None:
    rng = np.random.default_rng(11)
    tenants = np.repeat(np.arange(20), 50)
    values = rng.normal(size=tenants.size) + rng.normal(size=20)[tenants]
    arm = ClusterStats.from_values(values, tenants)
    result = compare_clusters(arm, arm)
    assert result.method is Method.CLUSTER_DELTA
    assert (result.control.n, result.control.n_clusters) == (1000, 20)
    assert result.absolute.n == 40
    assert result.absolute.df == pytest.approx(38.0)


def test_compare_dispatches_on_type() -> None:
    result = compare(ProportionStats(100, 10), ProportionStats(100, 20))
    assert result.method is Method.TWO_PROPORTION_Z


def test_compare_rejects_mixed_types() -> None:
    with pytest.raises(AnalysisError):
        compare(ProportionStats(100, 10), SampleStats(100, 10.0, 10.0))  # type: ignore[arg-type]


@pytest.mark.parametrize("alpha", [1.5, 0.0, 5e-324])
def test_invalid_alpha_raises(alpha: float) -> None:
    with pytest.raises(AnalysisError):
        compare_means(CONTROL, TREATMENT, alpha=alpha)


@pytest.mark.parametrize(
    ("control", "error"),
    [
        (SampleStats(0, 0.0, 0.0), StatError.NO_DATA),
        (SampleStats(1, 2.0, 4.0), StatError.TOO_FEW_SAMPLES),
    ],
)
def test_small_arms_return_an_error_not_an_exception(
    control: SampleStats, error: StatError
) -> None:
    result = compare_means(control, TREATMENT)
    assert result.absolute.error is error
    assert result.relative.error is error
    assert result.error is error


def test_zero_variance_returns_an_error_and_keeps_the_estimate() -> None:
    constant = SampleStats.from_values([2.0] * 10)
    result = compare_means(constant, SampleStats.from_values([3.0] * 10))
    assert result.absolute.error is StatError.ZERO_VARIANCE
    assert result.absolute.estimate == 1.0
    assert math.isnan(result.absolute.p_value)


def test_control_mean_zero_fails_only_the_relative_effect() -> None:
    control = SampleStats.from_values([-1.0, 1.0, -2.0, 2.0])
    result = compare_means(control, SampleStats.from_values([0.0, 1.0, 2.0, 3.0]))
    assert result.absolute.ok
    assert result.relative.error is StatError.CONTROL_MEAN_ZERO


def test_zero_denominator_returns_an_error() -> None:
    empty = RatioStats.from_values([0.0, 0.0], [0.0, 0.0])
    result = compare_ratios(empty, RatioStats.from_values([1.0, 2.0], [1.0, 1.0]))
    assert result.error is StatError.ZERO_DENOMINATOR


def test_no_nan_without_an_error() -> None:
    cases = [
        compare_means(SampleStats(2, 0.0, 0.0), SampleStats(2, 0.0, 0.0)),
        compare_proportions(ProportionStats(50, 0), ProportionStats(50, 5)),
        compare_proportions(ProportionStats(50, 50), ProportionStats(50, 50)),
        compare_means(CONTROL, TREATMENT, sequential=True),
    ]
    for result in cases:
        for estimate in (result.absolute, result.relative):
            numbers = [estimate.estimate, estimate.ci_low, estimate.ci_high, estimate.p_value]
            assert estimate.error is not None or all(map(math.isfinite, numbers))
