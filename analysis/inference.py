"""Two-sample comparisons on sufficient statistics: absolute and relative effects.

One engine for every metric type: each arm supplies `n`, `mean` and a per-unit
`variance` (see `analysis.statistics`), and the effect of treatment over
control is estimated

* absolutely, `mean_t - mean_c`, with variance `var_t/n_t + var_c/n_c`;
* relatively, `mean_t / mean_c - 1`, with the delta-method variance
  `var_t/(mean_c^2 n_t) + var_c mean_t^2/(mean_c^4 n_c)`.

Means, ratio metrics and cluster-robust metrics use Student's t with the
Welch-Satterthwaite degrees of freedom for both (as GrowthBook gbstats'
`TwoSidedTTest`, whose golden numbers `tests/analysis` reproduce);
proportions use the normal distribution (the two-proportion Wald z-test).
With `sequential=True` the interval is the always-valid confidence sequence
of `analysis.sequential` and the p-value its always-valid counterpart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from scipy import special

from analysis.errors import AnalysisError, StatError, check_alpha
from analysis.sequential import DEFAULT_TUNING_N, always_valid_p_value, half_width
from analysis.statistics import (
    ClusterStats,
    MeanVariance,
    ProportionStats,
    RatioStats,
    SampleStats,
)

NAN = math.nan


class Method(StrEnum):
    """How a comparison was computed; says which unit the analysis treats as independent."""

    WELCH_T = "welch_t"
    TWO_PROPORTION_Z = "two_proportion_z"
    RATIO_DELTA = "ratio_delta"
    CLUSTER_DELTA = "cluster_delta"


@dataclass(frozen=True, slots=True)
class EffectEstimate:
    """An effect of treatment over control with its interval and two-sided p-value.

    `df` is the degrees of freedom of the t reference distribution (`inf`:
    normal). `n` counts the independent units of both arms. `tuning_n` is set
    when the interval is an always-valid confidence sequence. When `error` is
    set, the numbers that could not be computed are NaN.
    """

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    relative: bool
    n: int
    tuning_n: float | None = None
    error: StatError | None = None

    @property
    def sequential(self) -> bool:
        return self.tuning_n is not None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One cohort's metric: sessions, mean and per-unit standard deviation."""

    n: int
    mean: float
    std: float
    n_clusters: int | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against control for one metric: summaries and both effects."""

    method: Method
    alpha: float
    control: ArmSummary
    treatment: ArmSummary
    absolute: EffectEstimate
    relative: EffectEstimate

    @property
    def sequential(self) -> bool:
        return self.absolute.sequential

    @property
    def error(self) -> StatError | None:
        return self.absolute.error or self.relative.error


def t_sf(x: float, df: float) -> float:
    """Survival function of Student's t (`df = inf`: normal), as `scipy.stats.t.sf`.

    Evaluated as the lower tail at `-x` by the `scipy.special` ufunc, which
    keeps full relative precision far in the tail and costs far less per call
    than the `scipy.stats` distribution object (`analyze` in
    `bench/bench_analysis.py`; figures in the README).
    """
    return float(special.stdtr(df, -x))


def t_quantile(q: float, df: float) -> float:
    """Quantile of Student's t (`df = inf`: normal), as `scipy.stats.t.ppf`."""
    return float(special.stdtrit(df, q))


def welch_df(var_c: float, n_c: int, var_t: float, n_t: int) -> float:
    """Welch-Satterthwaite degrees of freedom (`inf` when both variances are 0)."""
    a, b = var_c / n_c, var_t / n_t
    den = a * a / (n_c - 1) + b * b / (n_t - 1)
    return (a + b) ** 2 / den if den > 0 else math.inf


def estimate_effect(
    point: float,
    variance: float,
    *,
    relative: bool,
    n: int,
    alpha: float = 0.05,
    df: float = math.inf,
    tuning_n: float | None = None,
    error: StatError | None = None,
) -> EffectEstimate:
    """Interval and two-sided p-value for an asymptotically t (or normal) estimate.

    `variance` is the estimate's variance; `tuning_n` switches to the
    always-valid confidence sequence over `n` units; a given `error`, or a
    non-positive variance, gives a result with NaN in place of the numbers.
    """
    if error is None and not variance > 0:
        error = StatError.ZERO_VARIANCE
    if error is not None:
        return EffectEstimate(point, NAN, NAN, NAN, NAN, df, relative, n, tuning_n, error)
    se = math.sqrt(variance)
    if tuning_n is None:
        width = t_quantile(1 - alpha / 2, df) * se
        p = 2 * t_sf(abs(point) / se, df)
    else:
        width = half_width(se, n, alpha=alpha, tuning_n=tuning_n)
        p = always_valid_p_value(point, se, n, alpha=alpha, tuning_n=tuning_n)
    return EffectEstimate(
        point, se, point - width, point + width, min(p, 1.0), df, relative, n, tuning_n
    )


def _arm_error(arm: MeanVariance) -> StatError | None:
    if arm.n == 0:
        return StatError.NO_DATA
    if arm.n < 2:
        return StatError.TOO_FEW_SAMPLES
    if isinstance(arm, RatioStats | ClusterStats) and arm.sum_y == 0:
        return StatError.ZERO_DENOMINATOR
    return None


def _summary(arm: MeanVariance) -> ArmSummary:
    std = math.sqrt(arm.variance)
    if isinstance(arm, ClusterStats):
        return ArmSummary(arm.n_units, arm.mean, std, n_clusters=arm.n)
    return ArmSummary(arm.n, arm.mean, std)


def _compare(
    control: MeanVariance,
    treatment: MeanVariance,
    method: Method,
    alpha: float,
    tuning_n: float | None,
) -> Comparison:
    check_alpha(alpha)
    c, t = control, treatment
    error = _arm_error(c) or _arm_error(t)
    normal = error is not None or method is Method.TWO_PROPORTION_Z or tuning_n is not None
    df = math.inf if normal else welch_df(c.variance, c.n, t.variance, t.n)
    effect = partial(estimate_effect, n=c.n + t.n, alpha=alpha, df=df, tuning_n=tuning_n)
    summaries = (method, alpha, _summary(c), _summary(t))
    if error is not None:
        failed = [effect(NAN, NAN, relative=r, error=error) for r in (False, True)]
        return Comparison(*summaries, *failed)
    abs_var = c.variance / c.n + t.variance / t.n
    absolute = effect(t.mean - c.mean, abs_var, relative=False)
    if c.mean == 0:
        zero = StatError.CONTROL_MEAN_ZERO
        return Comparison(*summaries, absolute, effect(NAN, NAN, relative=True, error=zero))
    # delta method for mean_t / mean_c - 1
    rel_var = t.variance / (c.mean**2 * t.n) + c.variance * t.mean**2 / (c.mean**4 * c.n)
    relative = effect(t.mean / c.mean - 1, rel_var, relative=True)
    return Comparison(*summaries, absolute, relative)


def _tuning(sequential: bool, tuning_n: float) -> float | None:
    return tuning_n if sequential else None


def compare_means(
    control: SampleStats,
    treatment: SampleStats,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
) -> Comparison:
    """Welch's t-test on the difference of means, delta method for the relative effect."""
    return _compare(control, treatment, Method.WELCH_T, alpha, _tuning(sequential, tuning_n))


def compare_proportions(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
) -> Comparison:
    """Two-proportion Wald z-test (unpooled variance), delta method for the relative effect."""
    tuning = _tuning(sequential, tuning_n)
    return _compare(control, treatment, Method.TWO_PROPORTION_Z, alpha, tuning)


def compare_ratios(
    control: RatioStats,
    treatment: RatioStats,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
) -> Comparison:
    """Ratio metrics (sum x / sum y) by the delta method with the covariance term."""
    return _compare(control, treatment, Method.RATIO_DELTA, alpha, _tuning(sequential, tuning_n))


def compare_clusters(
    control: ClusterStats,
    treatment: ClusterStats,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
) -> Comparison:
    """Cluster-robust comparison: clusters (tenants) are the units, delta method on their sums.

    The t distribution uses the Welch-Satterthwaite degrees of freedom over
    clusters, and `tuning_n` counts clusters.
    """
    tuning = _tuning(sequential, tuning_n)
    return _compare(control, treatment, Method.CLUSTER_DELTA, alpha, tuning)


_METHODS: dict[type, Method] = {
    SampleStats: Method.WELCH_T,
    ProportionStats: Method.TWO_PROPORTION_Z,
    RatioStats: Method.RATIO_DELTA,
    ClusterStats: Method.CLUSTER_DELTA,
}


def compare(
    control: SampleStats | ProportionStats | RatioStats | ClusterStats,
    treatment: SampleStats | ProportionStats | RatioStats | ClusterStats,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning_n: float = DEFAULT_TUNING_N,
) -> Comparison:
    """Dispatch on the statistics' type to the matching `compare_*` function."""
    if type(control) is not type(treatment) or type(control) not in _METHODS:
        raise AnalysisError(
            "control and treatment must be statistics of one supported type",
            context={"control": type(control).__name__, "treatment": type(treatment).__name__},
        )
    method = _METHODS[type(control)]
    return _compare(control, treatment, method, alpha, _tuning(sequential, tuning_n))


@dataclass(frozen=True, slots=True)
class Heterogeneity:
    """Cochran's Q test that segment effects differ, with the fixed-effect pooled effect.

    `i_squared` is Higgins' I^2, the share of the variation beyond chance.
    """

    q: float
    df: int
    p_value: float
    i_squared: float
    pooled_estimate: float
    pooled_std_error: float
    n_segments: int
    error: StatError | None = None


def cochran_q(estimates: Sequence[float], std_errors: Sequence[float]) -> Heterogeneity:
    """Heterogeneity of per-segment effects; segments with a non-finite estimate are skipped."""
    if len(estimates) != len(std_errors):
        raise AnalysisError("estimates and std_errors differ in length")
    pairs = [(e, s) for e, s in zip(estimates, std_errors, strict=True) if math.isfinite(e + s)]
    if len(pairs) < 2:
        return Heterogeneity(NAN, 0, NAN, NAN, NAN, NAN, len(pairs), StatError.TOO_FEW_GROUPS)
    if any(s <= 0 for _, s in pairs):
        return Heterogeneity(NAN, 0, NAN, NAN, NAN, NAN, len(pairs), StatError.ZERO_VARIANCE)
    weights = [1.0 / (s * s) for _, s in pairs]
    total = math.fsum(weights)
    pooled = math.fsum(w * e for w, (e, _) in zip(weights, pairs, strict=True)) / total
    q = math.fsum(w * (e - pooled) ** 2 for w, (e, _) in zip(weights, pairs, strict=True))
    df = len(pairs) - 1
    i_squared = max(0.0, (q - df) / q) if q > 0 else 0.0
    p = float(special.chdtrc(df, q))  # chi-square survival function, as scipy.stats.chi2.sf
    return Heterogeneity(q, df, p, i_squared, pooled, math.sqrt(1.0 / total), len(pairs))
