"""Every variant against the control on every metric: effects, CUPED, corrections, guardrails.

`metric_results` turns the arms of one period (or one segment) into
`MetricResult`s:

* the comparison of the arms' statistics (`analysis.inference.compare`:
  Welch, two-proportion, ratio or cluster delta method), fixed-horizon or
  sequential;
* with CUPED, the comparison of the CUPED-adjusted linearised values (theta
  pooled over both arms' `CupedStats` by `analysis.variance.cuped_adjust`);
  the method keeps the unadjusted one's name, since the estimand and the
  unit are the same, and `cuped` reports theta, the variance reduction and
  the share of sessions with a covariate;
* quantile effects at p50 and p95 (Deng, Knoblich and Yu's order-statistic
  intervals), when the arms carry their quantiles (sessions are the unit);
* p-values adjusted (Holm or Benjamini-Hochberg) over the family of tested
  metrics and variants; guardrails stay out of it and are tested one-sided
  for non-inferiority on the relative effect, against their margin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from analysis.corrections import adjust_p_values, non_inferiority_test
from analysis.errors import StatError
from analysis.experiment_stats import Arms, ArmStats, Statistic
from analysis.inference import Comparison, compare
from analysis.metric_specs import MetricSpec
from analysis.quantiles import quantile_effect
from analysis.results import CupedSummary, MetricResult
from analysis.spec import AnalysisSpec
from analysis.variance import cuped_adjust


def metric_results(
    arms: Arms,
    control: str,
    variants: Sequence[str],
    spec: AnalysisSpec,
    *,
    coverage: Mapping[str, float] | None = None,
) -> tuple[MetricResult, ...]:
    """Each treatment variant against `control` on each metric, corrected."""
    results = [
        _result(by_cohort[control], by_cohort[variant], spec, coverage)
        for variant in variants
        if variant != control
        for by_cohort in arms.values()
    ]
    return corrected(
        results, spec, {name: by_cohort[control].metric for name, by_cohort in arms.items()}
    )


def _compare(control: Statistic, treatment: Statistic, spec: AnalysisSpec) -> Comparison:
    return compare(
        control, treatment, alpha=spec.alpha, sequential=spec.sequential, tuning_n=spec.tuning_n
    )


def _result(
    c: ArmStats, t: ArmStats, spec: AnalysisSpec, coverage: Mapping[str, float] | None
) -> MetricResult:
    metric = c.metric
    comparison = _compare(c.stats, t.stats, spec)
    cuped = None
    if spec.cuped:
        share = 0.0 if coverage is None else coverage.get(metric.name, 0.0)
        comparison, cuped = _cuped(c, t, comparison, share, spec)
    quantiles = tuple(
        quantile_effect(qc, qt, alpha=spec.alpha)
        for qc, qt in zip(c.quantiles, t.quantiles, strict=True)
    )
    return MetricResult(
        metric=metric.name,
        variant=t.cohort,
        control=c.cohort,
        guardrail=metric.guardrail,
        direction=metric.direction,
        comparison=comparison,
        p_value_adjusted=None,
        significant=False,
        non_inferiority=None,
        quantiles=quantiles,
        cuped=cuped,
    )


def _cuped(
    c: ArmStats, t: ArmStats, unadjusted: Comparison, coverage: float, spec: AnalysisSpec
) -> tuple[Comparison, CupedSummary]:
    if c.cuped is None or t.cuped is None or coverage == 0 or unadjusted.error is not None:
        error = unadjusted.error or StatError.NO_DATA
        return unadjusted, CupedSummary(0.0, 0.0, coverage, error)
    result = cuped_adjust(c.cuped, t.cuped)
    if result.error is not None:
        return unadjusted, CupedSummary(result.theta, 0.0, coverage, result.error)
    adjusted = _compare(result.control, result.treatment, spec)  # Welch's t, as compare_means
    adjusted = dataclasses.replace(
        adjusted,
        method=unadjusted.method,
        control=unadjusted.control,
        treatment=unadjusted.treatment,
    )
    return adjusted, CupedSummary(result.theta, result.variance_reduction, coverage)


def corrected(
    results: Sequence[MetricResult], spec: AnalysisSpec, metrics: Mapping[str, MetricSpec]
) -> tuple[MetricResult, ...]:
    """Adjusted p-values over the tested metrics; non-inferiority tests for guardrails.

    A guardrail without a margin is tested against 0 (not worse at all).
    """
    family = {
        i: r.comparison.absolute.p_value
        for i, r in enumerate(results)
        if not r.guardrail and r.error is None
    }
    adjusted = adjust_p_values(family, method=spec.correction)
    out = []
    for i, r in enumerate(results):
        if r.guardrail:
            test = non_inferiority_test(
                r.comparison.relative,
                margin=metrics[r.metric].margin or 0.0,
                direction=r.direction,
                alpha=spec.alpha,
            )
            out.append(dataclasses.replace(r, non_inferiority=test))
        elif i in adjusted and np.isfinite(adjusted[i]):
            p = adjusted[i]
            out.append(dataclasses.replace(r, p_value_adjusted=p, significant=p < spec.alpha))
        else:
            out.append(r)
    return tuple(out)
