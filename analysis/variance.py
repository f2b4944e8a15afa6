"""CUPED variance reduction with a pre-period covariate, on sufficient statistics.

Deng, Xu, Kohavi and Walker (2013), "Improving the Sensitivity of Online
Controlled Experiments by Utilizing Pre-Experiment Data": each unit's metric
y is replaced by y - theta (x - mean(x)), with x a covariate fixed before
randomisation (here the tenant's average of the metric before the experiment)
and theta = cov(y, x) / var(x) pooled over both arms. The adjusted arms are
plain `SampleStats`, so `compare_means` analyses them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from numpy.typing import ArrayLike

from analysis.errors import AnalysisError, StatError
from analysis.statistics import SampleStats, Sums, as_vector, covariance, paired_sums


@dataclass(frozen=True, slots=True)
class CupedStats(Sums):
    """Per-unit sums of a metric y and its pre-period covariate x, poolable with `+`."""

    n: int
    sum_y: float
    sum_x: float
    sum_y2: float
    sum_x2: float
    sum_xy: float

    @classmethod
    def from_values(cls, metric: ArrayLike, covariate: ArrayLike) -> CupedStats:
        y, x = as_vector(metric, "metric"), as_vector(covariate, "covariate")
        if y.shape != x.shape:
            raise AnalysisError("metric and covariate differ in length")
        return cls(*paired_sums(y, x))

    @property
    def metric(self) -> SampleStats:
        return SampleStats(self.n, self.sum_y, self.sum_y2)

    @property
    def covariate(self) -> SampleStats:
        return SampleStats(self.n, self.sum_x, self.sum_x2)

    @property
    def covariance(self) -> float:
        return covariance(self.n, self.sum_x, self.sum_y, self.sum_xy)


@dataclass(frozen=True, slots=True)
class CupedResult:
    """Adjusted arms, the pooled theta and the variance reduction of the effect.

    `variance_reduction` is 1 - var(adjusted effect) / var(unadjusted effect);
    with an `error` the arms are returned unadjusted and theta is 0.
    """

    theta: float
    control: SampleStats
    treatment: SampleStats
    variance_reduction: float
    error: StatError | None = None


def _adjusted(arm: CupedStats, theta: float, pooled_mean_x: float) -> SampleStats:
    mean = arm.metric.mean - theta * (arm.covariate.mean - pooled_mean_x)
    var = arm.metric.variance - 2 * theta * arm.covariance + theta**2 * arm.covariate.variance
    var = max(0.0, var)
    return SampleStats(arm.n, arm.n * mean, max(arm.n - 1, 0) * var + arm.n * mean**2)


def _effect_variance(control: SampleStats, treatment: SampleStats) -> float:
    return control.variance / control.n + treatment.variance / treatment.n


def cuped_adjust(control: CupedStats, treatment: CupedStats) -> CupedResult:
    """Adjust both arms with theta pooled across them."""
    unadjusted = (control.metric, treatment.metric)
    if min(control.n, treatment.n) < 2:
        error = StatError.NO_DATA if min(control.n, treatment.n) == 0 else StatError.TOO_FEW_SAMPLES
        return CupedResult(0.0, *unadjusted, 0.0, error)
    pooled = control + treatment
    if pooled.covariate.variance <= 0:
        return CupedResult(0.0, *unadjusted, 0.0, StatError.ZERO_VARIANCE)
    theta = pooled.covariance / pooled.covariate.variance
    mean_x = pooled.covariate.mean
    adjusted = (_adjusted(control, theta, mean_x), _adjusted(treatment, theta, mean_x))
    before = _effect_variance(*unadjusted)
    reduction = 1.0 - _effect_variance(*adjusted) / before if before > 0 else 0.0
    return CupedResult(theta, *adjusted, reduction)
