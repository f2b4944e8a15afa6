"""Quantiles (p50, p95, p99) per cohort and quantile effects with intervals.

Deng, Knoblich and Yu (2018), "Applying the Delta Method in Metric
Analytics", section 4.3: the (1 - alpha) interval of the q-quantile is the
pair of order statistics X(L), X(U) with ranks n q -/+ z sqrt(n q (1 - q));
its width, divided by 2 z, estimates the quantile's standard error without a
density estimate. Two cohorts are independent, so the effect's variance is
the sum of theirs (absolute) or the delta method (relative).

Quantiles are not functions of sufficient statistics: `quantile_estimates`
takes the raw values of one cohort as a 1-D array and reads the needed order
statistics with one `np.partition` call; `quantile_effect` compares two
cohorts' estimates (as gbstats' quantile statistics: estimate and interval
per cohort).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from analysis.errors import AnalysisError, StatError, check_alpha
from analysis.inference import EffectEstimate, estimate_effect

DEFAULT_QUANTILES = (0.5, 0.95, 0.99)
"""The quantiles a cohort summary describes."""
EFFECT_QUANTILES = (0.5, 0.95)
"""The quantiles whose effects a comparison reports."""


@dataclass(frozen=True, slots=True)
class QuantileEstimate:
    """The q-quantile of one cohort, its order-statistic interval and standard error."""

    q: float
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    error: StatError | None = None


@dataclass(frozen=True, slots=True)
class QuantileComparison:
    """Treatment against control at one quantile."""

    q: float
    control: QuantileEstimate
    treatment: QuantileEstimate
    absolute: EffectEstimate
    relative: EffectEstimate


def _ranks(n: int, q: float, z: float) -> tuple[int, int, int]:
    """1-based ranks of the point estimate and of the interval's ends."""
    spread = z * math.sqrt(n * q * (1 - q))
    return max(1, math.ceil(n * q)), math.floor(n * q - spread), math.ceil(n * q + spread)


def _values(values: ArrayLike) -> NDArray[np.float64]:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise AnalysisError("quantiles need a 1-D array of finite values", context={"ndim": x.ndim})
    return x


def quantile_estimates(
    values: ArrayLike, qs: Sequence[float] = DEFAULT_QUANTILES, *, alpha: float = 0.05
) -> tuple[QuantileEstimate, ...]:
    """Estimates of several quantiles of one cohort (the inverse-CDF sample quantile)."""
    check_alpha(alpha)
    if not all(0.0 < q < 1.0 for q in qs):
        raise AnalysisError("quantiles must lie in (0, 1)", context={"qs": list(qs)})
    x = _values(values)
    n, z = int(x.size), float(special.ndtri(1 - alpha / 2))
    if n == 0:
        nan = math.nan
        return tuple(QuantileEstimate(q, 0, nan, nan, nan, nan, StatError.NO_DATA) for q in qs)
    ranks = [_ranks(n, q, z) for q in qs]
    kth = sorted({min(max(r, 1), n) - 1 for triple in ranks for r in triple})
    ordered = np.partition(x, kth)
    return tuple(_estimate(q, n, ordered, r, z) for q, r in zip(qs, ranks, strict=True))


def _estimate(
    q: float, n: int, ordered: NDArray[np.float64], ranks: tuple[int, int, int], z: float
) -> QuantileEstimate:
    point, low, high = ranks
    estimate = float(ordered[point - 1])
    if low < 1 or high > n:
        nan = math.nan
        return QuantileEstimate(q, n, estimate, nan, nan, nan, StatError.TOO_FEW_SAMPLES)
    ci_low, ci_high = float(ordered[low - 1]), float(ordered[high - 1])
    std_error = (ci_high - ci_low) / (2 * z)
    error = None if std_error > 0 else StatError.ZERO_VARIANCE
    return QuantileEstimate(q, n, estimate, ci_low, ci_high, std_error, error)


def quantile_estimate(values: ArrayLike, q: float, *, alpha: float = 0.05) -> QuantileEstimate:
    """Estimate of one quantile of one cohort."""
    return quantile_estimates(values, (q,), alpha=alpha)[0]


def compare_quantiles(
    control: ArrayLike, treatment: ArrayLike, q: float, *, alpha: float = 0.05
) -> QuantileComparison:
    """Effect of treatment on the q-quantile: absolute and relative, normal intervals."""
    c = quantile_estimate(control, q, alpha=alpha)
    return quantile_effect(c, quantile_estimate(treatment, q, alpha=alpha), alpha=alpha)


def quantile_effect(
    c: QuantileEstimate, t: QuantileEstimate, *, alpha: float = 0.05
) -> QuantileComparison:
    """The effect at one quantile from each cohort's estimate of it (the same `q` and `alpha`)."""
    n, error = c.n + t.n, c.error or t.error
    absolute = estimate_effect(
        t.estimate - c.estimate, c.std_error**2 + t.std_error**2,
        relative=False, n=n, alpha=alpha, error=error,
    )  # fmt: skip
    if error is None and c.estimate == 0:
        error = StatError.CONTROL_MEAN_ZERO
    if error is not None:
        relative = estimate_effect(math.nan, math.nan, relative=True, n=n, error=error)
    else:
        # delta method for Q_t / Q_c - 1, independent cohorts
        rel_var = t.std_error**2 / c.estimate**2 + t.estimate**2 * c.std_error**2 / c.estimate**4
        ratio = t.estimate / c.estimate - 1
        relative = estimate_effect(ratio, rel_var, relative=True, n=n, alpha=alpha)
    return QuantileComparison(c.q, c, t, absolute, relative)
