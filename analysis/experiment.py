"""`analyze`: the one-row-per-session DataFrame in, an `ExperimentResult` out.

Two steps. `analysis.frame_stats.experiment_stats` reads the frame once into
statistics objects per period, segment, metric and cohort (the only step
that reads pandas); `experiment_result` computes from those alone, period by
period (see `analysis.periods`):

1. health: sample-ratio mismatch against the split's weights (over units:
   tenants when the split buckets tenants), small cohorts, and whether the
   cohorts differ in their mix of regions (and tenants, when sessions are
   the unit) (`analysis.split_health`);
2. comparisons against the control (`analysis.effects`), segments with
   heterogeneity (`analysis.segments`), a recommendation per segment
   (`analysis.recommend`).

Sessions routed by a rule, the default or a fallback are counted in
`excluded`; pre-period sessions only feed the CUPED covariates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analysis import columns as col
from analysis.effects import metric_results
from analysis.errors import AnalysisError, ErrorCode, StatError
from analysis.experiment_stats import ExperimentStats, PeriodStats
from analysis.frame_stats import experiment_stats
from analysis.periods import Period
from analysis.recommend import Recommender
from analysis.results import (
    ExperimentResult,
    HeterogeneityResult,
    MetricResult,
    Notice,
    NoticeKind,
    PeriodResult,
    Recommendation,
    SegmentResult,
)
from analysis.segments import segment_results
from analysis.spec import AnalysisSpec, PeriodMode
from analysis.split_health import split_health, unit_of

if TYPE_CHECKING:
    import pandas as pd

    from experiments.flags.model import FlagDefinition

_DROPPED = {
    "duplicate_assignments": "repeated assignment events",
    "duplicate_outcomes": "duplicate outcome events",
    "orphan_outcomes": (
        "outcome events of sessions not in the frame (other flags, or before `since`)"
    ),
}


def analyze(
    df: pd.DataFrame,
    spec: AnalysisSpec | None = None,
    *,
    flag: Mapping[str, Any] | FlagDefinition | None = None,
    **options: Any,
) -> ExperimentResult:
    """Analyse the sessions of one flag (a frame of `load_sessions`) as `spec` says.

    `options` are fields of `AnalysisSpec` (`segment_by="region"`,
    `cuped=True`, ...), applied over `spec` (default `AnalysisSpec()`).
    `flag`: the flagd definition (default `df.attrs["flag"]`), for the control
    and the targeting changes. Wrong arguments raise `AnalysisError`; data
    that cannot support a statistic gives results whose `error` says why.
    """
    spec = (spec or AnalysisSpec()).replace(**options)
    return experiment_result(experiment_stats(df, spec, flag), spec)


def experiment_result(stats: ExperimentStats, spec: AnalysisSpec) -> ExperimentResult:
    """The result of the statistics `stats` (`analysis.frame_stats.experiment_stats`)."""
    notices = _notices(stats, spec)
    head = (stats.flag_key, spec, stats.metrics)
    if not stats.periods:
        return ExperimentResult(*head, (), stats.excluded, notices, StatError.NO_DATA)
    control = _control(spec.control, stats.flag, [p.period for p in stats.periods])
    periods = tuple(_period_result(p, control, spec, stats) for p in stats.periods)
    return ExperimentResult(*head, periods, stats.excluded, notices)


def _control(
    control: str | None, flag: Mapping[str, Any] | None, periods: Sequence[Period]
) -> str | None:
    """The control asked for (checked against the splits' variants), else None (per period)."""
    variants = {v for p in periods for v in p.variants}
    if control is not None and control not in variants:
        raise AnalysisError(
            f"control {control!r} is not a variant of the split ({sorted(variants)})",
            code=ErrorCode.UNKNOWN_COHORT,
            context={"control": control, "variants": sorted(variants)},
        )
    if control is None and flag is not None:
        declared = (flag.get("metadata") or {}).get("control")
        return declared if declared in variants else None
    return control


def _period_result(
    stats: PeriodStats, control: str | None, spec: AnalysisSpec, experiment: ExperimentStats
) -> PeriodResult:
    period, variants = stats.period, list(stats.period.variants)
    ctl = control if control in variants else variants[0]
    health = split_health(stats.counts, period, stats.unit)
    comparisons = metric_results(stats.arms, ctl, variants, spec, coverage=stats.coverage)
    segments, heterogeneity = _segments(stats, ctl, spec)
    recommender = Recommender(
        ctl, variants, health.srm.flagged, spec.power, experiment.flag, experiment.flag_key,
        period.split_id,
    )  # fmt: skip
    recommendations = _recommendations(recommender, period, comparisons, segments)
    no_control = any(by_cohort[ctl].stats.n == 0 for by_cohort in stats.arms.values())
    return PeriodResult(
        period, stats.unit, ctl, health, stats.cohorts, comparisons, segments, heterogeneity,
        recommendations, StatError.NO_DATA if no_control else None,
    )  # fmt: skip


def _segments(
    stats: PeriodStats, control: str, spec: AnalysisSpec
) -> tuple[tuple[SegmentResult, ...], tuple[HeterogeneityResult, ...]]:
    """Every segmentation's levels and their heterogeneity, in the order asked for."""
    variants = stats.period.variants
    found = [
        segment_results(segmentation, control, variants, spec, coverage=stats.coverage)
        for segmentation in stats.segmentations
    ]
    return tuple(s for levels, _ in found for s in levels), tuple(q for _, qs in found for q in qs)


def _recommendations(
    recommender: Recommender,
    period: Period,
    comparisons: Sequence[MetricResult],
    segments: Sequence[SegmentResult],
) -> tuple[Recommendation, ...]:
    """The whole period's recommendation, then each segment's, at the period's daily rate."""
    days = period.days
    overall = recommender.recommend(
        comparisons, segment=None, sessions_per_day=period.sessions / days
    )
    return overall, *(
        recommender.recommend(
            s.comparisons, segment=(s.attribute, s.level), sessions_per_day=s.sessions / days
        )
        for s in segments
    )


def _notices(stats: ExperimentStats, spec: AnalysisSpec) -> tuple[Notice, ...]:
    periods = [p.period for p in stats.periods]
    notices = [*_period_notices(periods, spec)]
    clustered = sorted({p.bucket_unit for p in periods} - col.SESSION_UNITS)
    if clustered:
        notices.append(Notice(NoticeKind.CLUSTERED_UNIT, unit_of(clustered[0]).description))
    if stats.excluded:
        total = sum(e.sessions for e in stats.excluded)
        notices.append(
            Notice(
                NoticeKind.EXCLUDED_SESSIONS,
                f"{total:,} sessions were routed by a rule, the default or a fallback, "
                "not by the split: they are left out of the cohorts (see `excluded`)",
            )
        )
    dropped = [f"{n:,} {_DROPPED[key]}" for key, n in stats.dropped.items() if n]
    if dropped:
        text = "left out while loading: " + ", ".join(dropped)
        notices.append(Notice(NoticeKind.DROPPED_EVENTS, text))
    return tuple(notices)


def _period_notices(periods: Sequence[Period], spec: AnalysisSpec) -> list[Notice]:
    if not periods:
        return [Notice(NoticeKind.NO_SPLIT, "no session was randomised by a split of this flag")]
    notices = []
    if len(periods) > 1 or spec.period is PeriodMode.LATEST:
        configs = "; ".join(
            f"period {p.label}: {dict(p.weights)}, version {'/'.join(p.flag_versions)}, "
            f"{p.start} to {p.end}"
            for p in periods
        )
        notices.append(Notice(NoticeKind.PERIODS, f"the split changed; analysed apart: {configs}"))
    if any(p.configurations > 1 for p in periods):
        notices.append(
            Notice(
                NoticeKind.POOLED_PERIODS,
                "periods with different weights or flag versions are pooled: a drift of the "
                "metrics over time can bias the comparison",
            )
        )
    return notices
