"""Per-session arrays -> statistics objects, per metric and cohort (numpy only).

`analysis.frame_stats` reads the sessions of one analysis (a period, or a
level of a segment) out of the frame as `SessionArrays`; `period_arms` and
`segment_arms` reduce them to `ArmStats`, the objects every later step takes.

Which statistics object a metric gets:

* the tenant (or another unit than the session) is the randomisation unit:
  `ClusterStats` over units (cluster-robust delta method; for a mean-rolled
  metric the numerator is the units' summed values and the denominator their
  count, else per-session values over sessions);
* a mean-rolled metric (latency per turn): `RatioStats` of the per-session
  sum and count of values;
* a proportion rolled up by last or max: `ProportionStats`;
* anything else: `SampleStats` of the per-session value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.errors import StatError
from analysis.experiment_stats import Arms, ArmStats, Statistic
from analysis.metric_specs import MetricSpec
from analysis.quantiles import EFFECT_QUANTILES, QuantileEstimate, quantile_estimates
from analysis.results import CohortSummary
from analysis.statistics import ClusterStats, ProportionStats, RatioStats, SampleStats
from analysis.variance import CupedStats

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class SessionArrays:
    """The sessions of one analysis, one entry per session.

    `cohorts`: the cohort label; `clusters`: the unit's code, numbered in
    order of first appearance, when the unit is not the session;
    `metrics[name]`: value, numerator and denominator (for a ratio the sum
    and count of the session's values, else the value and 1; NaN value: no
    data); `covariates[name]`: the CUPED covariate, when asked for.
    """

    cohorts: NDArray[Any]
    clusters: NDArray[np.int64] | None
    metrics: Mapping[str, tuple[Floats, Floats, Floats]]
    covariates: Mapping[str, Floats] | None


@dataclass(frozen=True, slots=True, eq=False)
class _Sample:
    """One cohort's sessions with a value of one metric, and what they reduce from."""

    cohort: str
    metric: MetricSpec
    stats: Statistic
    values: Floats
    numerators: Floats
    denominators: Floats
    clusters: NDArray[np.int64] | None
    covariate: Floats | None
    n_missing: int


def period_arms(
    sessions: SessionArrays,
    specs: Sequence[MetricSpec],
    cohorts: Sequence[str],
    *,
    alpha: float,
    coverage: Mapping[str, float] | None,
) -> tuple[Arms, tuple[CohortSummary, ...]]:
    """The arms of a whole period (with effect quantiles when sessions are the unit,
    at level `alpha`) and the cohort summaries."""
    samples = _samples(sessions, specs, cohorts)
    effect_alpha = alpha if sessions.clusters is None else None
    arms = _arms(samples, coverage, effect_alpha)
    summaries = tuple(
        _summary(sample)
        for metric, by_cohort in samples.items()
        for cohort, sample in by_cohort.items()
    )
    return arms, summaries


def segment_arms(
    sessions: SessionArrays,
    specs: Sequence[MetricSpec],
    cohorts: Sequence[str],
    *,
    coverage: Mapping[str, float] | None,
) -> Arms:
    """The arms of one level of a segment (no quantiles)."""
    return _arms(_samples(sessions, specs, cohorts), coverage, None)


def _samples(
    sessions: SessionArrays, specs: Sequence[MetricSpec], cohorts: Sequence[str]
) -> dict[str, dict[str, _Sample]]:
    masks = {cohort: sessions.cohorts == cohort for cohort in cohorts}
    covariates = sessions.covariates or {}
    return {
        spec.name: {
            cohort: _sample(cohort, spec, sessions, mask, covariates.get(spec.name))
            for cohort, mask in masks.items()
        }
        for spec in specs
    }


def _sample(
    cohort: str,
    spec: MetricSpec,
    sessions: SessionArrays,
    mask: NDArray[np.bool_],
    covariate: Floats | None,
) -> _Sample:
    values, numerators, denominators = sessions.metrics[spec.name]
    present = mask & np.isfinite(values) & np.isfinite(numerators) & (denominators > 0)
    y, x, d = values[present], numerators[present], denominators[present]
    clusters = None if sessions.clusters is None else sessions.clusters[present]
    stats = statistic(spec, x, d, clusters)
    cov = None if covariate is None else covariate[present]
    missing = int(np.count_nonzero(mask) - y.size)
    return _Sample(cohort, spec, stats, y, x, d, clusters, cov, missing)


def _arms(
    samples: Mapping[str, Mapping[str, _Sample]],
    coverage: Mapping[str, float] | None,
    effect_alpha: float | None,
) -> Arms:
    return {
        metric: {
            cohort: _arm(sample, (coverage or {}).get(metric, 0.0), effect_alpha)
            for cohort, sample in by_cohort.items()
        }
        for metric, by_cohort in samples.items()
    }


def _arm(sample: _Sample, coverage: float, effect_alpha: float | None) -> ArmStats:
    cuped = None
    if sample.covariate is not None and coverage != 0:
        cuped = CupedStats.from_values(*linearised(sample, sample.covariate))
    quantiles: tuple[QuantileEstimate, ...] = ()
    if effect_alpha is not None:
        quantiles = quantile_estimates(sample.values, EFFECT_QUANTILES, alpha=effect_alpha)
    return ArmStats(sample.cohort, sample.metric, sample.stats, sample.n_missing, cuped, quantiles)


def linearised(sample: _Sample, covariate: Floats) -> tuple[Floats, Floats]:
    """Per-unit values whose mean is the cohort's metric and whose variance is its per-unit one,
    with the sessions' `covariate` per unit.

    A plain metric: the sessions' values. A ratio sum(x) / sum(d) over units
    (sessions, or clusters with their summed x and d): R + (x - R d) / mean(d),
    the delta method's linearisation (Deng, Knoblich and Yu 2018, section 3),
    so that CUPED on these values adjusts the ratio itself. For clusters the
    covariate is the mean over their sessions.
    """
    x, d, cov = sample.numerators, sample.denominators, covariate
    if sample.clusters is not None:
        _, units = np.unique(sample.clusters, return_inverse=True)
        x = np.bincount(units, weights=x).astype(np.float64)
        d = np.bincount(units, weights=d).astype(np.float64)
        cov = np.bincount(units, weights=cov) / np.bincount(units).astype(np.float64)
    elif not sample.metric.ratio:
        return sample.values, cov
    if x.size == 0 or d.sum() == 0:
        return x, cov
    ratio = x.sum() / d.sum()
    return ratio + (x - ratio * d) / d.mean(), cov


def statistic(
    spec: MetricSpec,
    numerators: Floats,
    denominators: Floats,
    clusters: NDArray[np.int64] | None = None,
) -> Statistic:
    """The statistics object of one cohort's metric (see the module docstring)."""
    if clusters is not None:
        return ClusterStats.from_values(numerators, clusters, denominators)
    if spec.ratio:
        return RatioStats.from_values(numerators, denominators)
    if spec.proportion:
        return ProportionStats.from_values(numerators)
    return SampleStats.from_values(numerators)


def tenant_covariates(
    pre_tenants: NDArray[np.int64],
    row_tenants: NDArray[np.int64],
    n_tenants: int,
    pre_values: Mapping[str, Floats],
) -> tuple[dict[str, Floats], dict[str, float]]:
    """CUPED covariates: each row's metric averaged over its tenant's pre-period sessions.

    Tenants are codes shared by both arrays (-1: none). Rows whose tenant has
    no pre-period value get the mean of the covered rows' covariates (they
    are then not adjusted). Returns the covariates and, per metric, the share
    of rows that had a value of their own.
    """
    covariates: dict[str, Floats] = {}
    coverage: dict[str, float] = {}
    for name, values in pre_values.items():
        known = np.isfinite(values)
        sums = np.bincount(pre_tenants[known], weights=values[known], minlength=n_tenants)
        counts = np.bincount(pre_tenants[known], minlength=n_tenants)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.append(sums / counts, np.nan)  # code -1 (no tenant) reads NaN
        x = means[row_tenants]
        covered = np.isfinite(x)
        coverage[name] = float(covered.mean()) if x.size else 0.0
        if covered.any():
            x[~covered] = x[covered].mean()
        covariates[name] = x
    return covariates, coverage


def _summary(sample: _Sample) -> CohortSummary:
    """n, mean as compared, and per-session std and quantiles."""
    stats = sample.stats
    p50, p95, p99 = (q.estimate for q in quantile_estimates(sample.values))
    n = int(sample.values.size)
    cohort, metric = sample.cohort, sample.metric.name
    if n == 0:
        nan = math.nan
        return CohortSummary(
            cohort, metric, 0, 0, sample.n_missing, nan, nan, p50, p95, p99, StatError.NO_DATA
        )
    std = float(np.std(sample.values, ddof=1)) if n > 1 else math.nan
    return CohortSummary(
        cohort, metric, n, int(stats.n), sample.n_missing, stats.mean, std, p50, p95, p99
    )
