"""The one place a DataFrame becomes statistics objects: per cohort and metric.

`cohort_samples` takes the rows of one analysis (a period, or a segment of
it) and returns, per metric and cohort, the sufficient statistics the
inference functions take plus the per-session arrays that quantiles and CUPED
need. Everything after this module works on those objects and arrays, not on
pandas.

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

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis import columns as col
from analysis.errors import StatError
from analysis.metric_specs import MetricSpec
from analysis.quantiles import quantile_estimates
from analysis.report import CohortSummary
from analysis.statistics import ClusterStats, ProportionStats, RatioStats, SampleStats

Statistic = SampleStats | ProportionStats | RatioStats | ClusterStats


@dataclass(frozen=True, slots=True, eq=False)
class CohortSample:
    """One cohort's sessions with a value of one metric.

    `values` is the per-session value (quantiles, CUPED); `numerators` and
    `denominators` are what the statistics were summed from (for a ratio the
    per-session sum and count of values, else the value and 1); `clusters`
    the unit code of each session when the analysis is cluster-robust;
    `covariate` the CUPED pre-period covariate of each session, if asked for.
    """

    cohort: str
    metric: MetricSpec
    stats: Statistic
    values: NDArray[np.float64]
    numerators: NDArray[np.float64]
    denominators: NDArray[np.float64]
    clusters: NDArray[np.int64] | None
    covariate: NDArray[np.float64] | None
    n_missing: int


Samples = dict[str, dict[str, CohortSample]]
"""metric name -> cohort -> sample."""


def cohort_samples(
    frame: pd.DataFrame,
    metrics: Sequence[MetricSpec],
    cohorts: Sequence[str],
    *,
    cluster: str | None = None,
    covariates: Mapping[str, NDArray[np.float64]] | None = None,
) -> Samples:
    """Statistics per metric and cohort of the rows of `frame`.

    `cluster` names the column of the randomisation unit when it is not the
    session; `covariates[metric]` is aligned with the rows of `frame`.
    """
    labels = frame[col.COHORT].astype(object).to_numpy()
    masks = {cohort: labels == cohort for cohort in cohorts}
    codes = None if cluster is None else pd.factorize(frame[cluster])[0].astype(np.int64)
    samples: Samples = {}
    for spec in metrics:
        covariate = None if covariates is None else covariates.get(spec.name)
        arrays = _metric_arrays(frame, spec)
        samples[spec.name] = {
            cohort: _sample(cohort, spec, arrays, mask, clusters=codes, covariate=covariate)
            for cohort, mask in masks.items()
        }
    return samples


def linearised(sample: CohortSample) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Per-unit values whose mean is the cohort's metric and whose variance is its per-unit one.

    A plain metric: the sessions' values. A ratio sum(x) / sum(d) over units
    (sessions, or clusters with their summed x and d): R + (x - R d) / mean(d),
    the delta method's linearisation (Deng, Knoblich and Yu 2018, section 3),
    so that CUPED on these values adjusts the ratio itself. The covariate
    comes along per unit (for clusters: the mean over their sessions).
    """
    x, d, cov = sample.numerators, sample.denominators, sample.covariate
    if sample.clusters is not None:
        _, units = np.unique(sample.clusters, return_inverse=True)
        x = np.bincount(units, weights=x).astype(np.float64)
        d = np.bincount(units, weights=d).astype(np.float64)
        if cov is not None:
            cov = np.bincount(units, weights=cov) / np.bincount(units).astype(np.float64)
    elif not sample.metric.ratio:
        return sample.values, cov
    if x.size == 0 or d.sum() == 0:
        return x, cov
    ratio = x.sum() / d.sum()
    return ratio + (x - ratio * d) / d.mean(), cov


def _metric_arrays(
    frame: pd.DataFrame, spec: MetricSpec
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per-session value, numerator and denominator of a metric (NaN value: no data)."""
    values = frame[spec.name].to_numpy(dtype=np.float64)
    if spec.ratio and col.sum_column(spec.name) in frame:
        sums = frame[col.sum_column(spec.name)].to_numpy(dtype=np.float64)
        counts = frame[col.count_column(spec.name)].to_numpy(dtype=np.float64)
        return values, sums, counts
    return values, values, np.ones_like(values)


def _sample(
    cohort: str,
    spec: MetricSpec,
    arrays: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    mask: NDArray[np.bool_],
    *,
    clusters: NDArray[np.int64] | None,
    covariate: NDArray[np.float64] | None,
) -> CohortSample:
    values, numerators, denominators = arrays
    present = mask & np.isfinite(values) & np.isfinite(numerators) & (denominators > 0)
    y, x, d = values[present], numerators[present], denominators[present]
    units = None if clusters is None else clusters[present]
    stats = statistic(spec, x, d, units)
    cov = None if covariate is None else covariate[present]
    missing = int(np.count_nonzero(mask) - y.size)
    return CohortSample(cohort, spec, stats, y, x, d, units, cov, missing)


def statistic(
    spec: MetricSpec,
    numerators: NDArray[np.float64],
    denominators: NDArray[np.float64],
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


def shared_codes(
    first: pd.Series, second: pd.Series
) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
    """Integer codes of two columns over their common levels (-1: missing), and the level count."""
    if (
        isinstance(first.dtype, pd.CategoricalDtype)
        and isinstance(second.dtype, pd.CategoricalDtype)
        and first.cat.categories.equals(second.cat.categories)
    ):
        size = len(first.cat.categories)
        return first.cat.codes.to_numpy(np.int64), second.cat.codes.to_numpy(np.int64), size
    both = pd.concat([first.astype(object), second.astype(object)], ignore_index=True)
    codes, uniques = pd.factorize(both)
    return codes[: len(first)].astype(np.int64), codes[len(first) :].astype(np.int64), len(uniques)


def pre_period_covariates(
    pre: pd.DataFrame, rows: pd.DataFrame, metrics: Sequence[MetricSpec]
) -> tuple[dict[str, NDArray[np.float64]], dict[str, float]]:
    """CUPED covariates: each row's metric averaged over its tenant's pre-period sessions.

    Rows whose tenant has no pre-period value get the mean of the covered
    rows' covariates (they are then not adjusted). Returns the covariates and,
    per metric, the share of rows that had a value of their own.
    """
    pre_codes, row_codes, n_tenants = shared_codes(pre[col.TENANT_ID], rows[col.TENANT_ID])
    covariates: dict[str, NDArray[np.float64]] = {}
    coverage: dict[str, float] = {}
    for spec in metrics:
        values = pre[spec.name].to_numpy(dtype=np.float64)
        known = np.isfinite(values)
        sums = np.bincount(pre_codes[known], weights=values[known], minlength=n_tenants)
        counts = np.bincount(pre_codes[known], minlength=n_tenants)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.append(sums / counts, np.nan)  # code -1 (no tenant) reads NaN
        x = means[row_codes]
        covered = np.isfinite(x)
        coverage[spec.name] = float(covered.mean()) if x.size else 0.0
        if covered.any():
            x[~covered] = x[covered].mean()
        covariates[spec.name] = x
    return covariates, coverage


def cohort_summaries(samples: Samples) -> tuple[CohortSummary, ...]:
    """n, mean as compared, and per-session std and quantiles, per metric and cohort."""
    return tuple(
        _summary(cohort, metric, s)
        for metric, by_cohort in samples.items()
        for cohort, s in by_cohort.items()
    )


def _summary(cohort: str, metric: str, s: CohortSample) -> CohortSummary:
    p50, p95, p99 = (q.estimate for q in quantile_estimates(s.values))
    n = int(s.values.size)
    if n == 0:
        nan = math.nan
        return CohortSummary(
            cohort, metric, 0, 0, s.n_missing, nan, nan, p50, p95, p99, StatError.NO_DATA
        )
    std = float(np.std(s.values, ddof=1)) if n > 1 else math.nan
    return CohortSummary(
        cohort, metric, n, int(s.stats.n), s.n_missing, s.stats.mean, std, p50, p95, p99
    )
