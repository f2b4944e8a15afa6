"""Every variant against the control on every metric: effects, CUPED, corrections, guardrails.

`metric_results` turns the cohort samples of one period (or one segment)
into `MetricResult`s:

* the comparison of the samples' statistics (`analysis.inference.compare`:
  Welch, two-proportion, ratio or cluster delta method), fixed-horizon or
  sequential;
* with CUPED, the comparison of the CUPED-adjusted linearised values
  (`cohorts.linearised`, theta pooled over both arms by
  `analysis.variance.cuped_adjust`); the method keeps the unadjusted one's
  name, since the estimand and the unit are the same, and `cuped` reports
  theta, the variance reduction and the share of sessions with a covariate;
* quantile effects at p50 and p95 (Deng, Knoblich and Yu's order-statistic
  intervals), when sessions are the unit;
* p-values adjusted (Holm or Benjamini-Hochberg) over the family of tested
  metrics and variants; guardrails stay out of it and are tested one-sided
  for non-inferiority on the relative effect, against their margin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from analysis.cohorts import CohortSample, Samples, linearised
from analysis.corrections import adjust_p_values, non_inferiority_test
from analysis.errors import StatError
from analysis.inference import Comparison, compare, compare_means
from analysis.metric_specs import MetricSpec
from analysis.quantiles import QuantileComparison, compare_quantiles
from analysis.report import CupedSummary, MetricResult
from analysis.spec import AnalysisSpec
from analysis.variance import CupedStats, cuped_adjust

EFFECT_QUANTILES = (0.5, 0.95)


def metric_results(
    samples: Samples,
    specs: Sequence[MetricSpec],
    control: str,
    variants: Sequence[str],
    settings: AnalysisSpec,
    *,
    coverage: Mapping[str, float] | None = None,
    quantiles: bool = True,
) -> tuple[MetricResult, ...]:
    """Each treatment variant against `control` on each metric, corrected."""
    results = [
        _result(
            samples[spec.name][control], samples[spec.name][variant], settings, coverage, quantiles
        )
        for variant in variants
        if variant != control
        for spec in specs
    ]
    return corrected(results, settings, {spec.name: spec for spec in specs})


def _result(
    c: CohortSample,
    t: CohortSample,
    settings: AnalysisSpec,
    coverage: Mapping[str, float] | None,
    quantiles: bool,
) -> MetricResult:
    spec = c.metric
    comparison = compare(
        c.stats,
        t.stats,
        alpha=settings.alpha,
        sequential=settings.sequential,
        tuning_n=settings.tuning_n,
    )
    cuped = None
    if settings.cuped:
        share = 0.0 if coverage is None else coverage.get(spec.name, 0.0)
        comparison, cuped = _cuped(c, t, comparison, share, settings)
    effects: tuple[QuantileComparison, ...] = ()
    if quantiles and c.clusters is None:
        effects = tuple(
            compare_quantiles(c.values, t.values, q, alpha=settings.alpha) for q in EFFECT_QUANTILES
        )
    return MetricResult(
        metric=spec.name,
        variant=t.cohort,
        control=c.cohort,
        guardrail=spec.guardrail,
        direction=spec.direction,
        comparison=comparison,
        p_value_adjusted=None,
        significant=False,
        non_inferiority=None,
        quantiles=effects,
        cuped=cuped,
    )


def _cuped(
    c: CohortSample,
    t: CohortSample,
    unadjusted: Comparison,
    coverage: float,
    settings: AnalysisSpec,
) -> tuple[Comparison, CupedSummary]:
    (y_c, x_c), (y_t, x_t) = linearised(c), linearised(t)
    if x_c is None or x_t is None or coverage == 0 or unadjusted.error is not None:
        error = unadjusted.error or StatError.NO_DATA
        return unadjusted, CupedSummary(0.0, 0.0, coverage, error)
    result = cuped_adjust(CupedStats.from_values(y_c, x_c), CupedStats.from_values(y_t, x_t))
    if result.error is not None:
        return unadjusted, CupedSummary(result.theta, 0.0, coverage, result.error)
    adjusted = compare_means(
        result.control,
        result.treatment,
        alpha=settings.alpha,
        sequential=settings.sequential,
        tuning_n=settings.tuning_n,
    )
    adjusted = dataclasses.replace(
        adjusted,
        method=unadjusted.method,
        control=unadjusted.control,
        treatment=unadjusted.treatment,
    )
    summary = CupedSummary(result.theta, result.variance_reduction, coverage)
    return adjusted, summary


def corrected(
    results: Sequence[MetricResult], settings: AnalysisSpec, specs: Mapping[str, MetricSpec]
) -> tuple[MetricResult, ...]:
    """Adjusted p-values over the tested metrics; non-inferiority tests for guardrails.

    A guardrail without a margin is tested against 0 (not worse at all).
    """
    family = {
        i: r.comparison.absolute.p_value
        for i, r in enumerate(results)
        if not r.guardrail and r.error is None
    }
    adjusted = adjust_p_values(family, method=settings.correction)
    out = []
    for i, r in enumerate(results):
        if r.guardrail:
            test = non_inferiority_test(
                r.comparison.relative,
                margin=specs[r.metric].margin or 0.0,
                direction=r.direction,
                alpha=settings.alpha,
            )
            out.append(dataclasses.replace(r, non_inferiority=test))
        elif i in adjusted and np.isfinite(adjusted[i]):
            p = adjusted[i]
            out.append(dataclasses.replace(r, p_value_adjusted=p, significant=p < settings.alpha))
        else:
            out.append(r)
    return tuple(out)
