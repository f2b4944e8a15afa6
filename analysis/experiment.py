"""`analyze`: the one-row-per-session DataFrame in, an `ExperimentResult` out.

The orchestration, period by period (see `analysis.periods`):

1. health: sample-ratio mismatch against the split's weights (over units:
   tenants when the split buckets tenants), small cohorts, and whether the
   cohorts differ in their mix of regions (and tenants, when sessions are
   the unit);
2. statistics per cohort and metric (`analysis.cohorts`), comparisons
   against the control (`analysis.effects`), segments with heterogeneity
   (`analysis.segments`), a recommendation per segment (`analysis.recommend`).

Sessions routed by a rule, the default or a fallback are counted in
`excluded`; pre-period sessions only feed the CUPED covariates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from analysis import columns as col
from analysis.cohorts import cohort_samples, cohort_summaries, pre_period_covariates
from analysis.effects import metric_results
from analysis.errors import AnalysisError, ErrorCode, StatError
from analysis.metric_specs import MetricSpec, metric_spec, metric_specs
from analysis.periods import Period, split_periods
from analysis.recommend import Decision, flag_document, recommend
from analysis.report import (
    Excluded,
    ExperimentResult,
    HeterogeneityResult,
    Notice,
    NoticeKind,
    PeriodResult,
    SegmentResult,
)
from analysis.segments import SegmentInput, segment_results
from analysis.spec import AnalysisSpec, PeriodMode
from analysis.split_health import split_health, unit_of
from experiments.flags.model import FlagDefinition

_DROPPED = (
    ("duplicate_assignments", "repeated assignment events"),
    ("duplicate_outcomes", "duplicate outcome events"),
    (
        "orphan_outcomes",
        "outcome events of sessions not in the frame (other flags, or before `since`)",
    ),
)


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
    settings = (spec or AnalysisSpec()).replace(**options)
    _check(df)
    attrs = df.attrs
    flag = flag_document(flag if flag is not None else attrs.get("flag"))
    specs = _metrics(df, settings.metrics)
    control = settings.control
    routing = df[col.ROUTING].astype(object).to_numpy()
    rows = df[routing == col.Routing.SPLIT.value]
    periods = split_periods(rows, settings.period)
    excluded = _excluded(df, routing)
    notices = _notices(df, periods, excluded, settings)
    flag_key = attrs.get("flag_key") or (flag or {}).get("key")
    if not periods:
        return ExperimentResult(flag_key, settings, specs, (), excluded, notices, StatError.NO_DATA)
    chosen = _control(control, flag, [p for p, _ in periods])
    pre = df[routing == col.Routing.PRE_PERIOD.value]
    context = _Context(settings, specs, pre, flag, flag_key)
    results = tuple(context.period(rows[mask], p, chosen) for p, mask in periods)
    return ExperimentResult(flag_key, settings, specs, results, excluded, notices)


def _check(df: pd.DataFrame) -> None:
    missing = [name for name in col.REQUIRED_COLUMNS if name not in df]
    if missing:
        raise AnalysisError(
            f"the frame lacks the columns {missing} (see analysis.columns)",
            context={"missing": missing},
        )


def _metrics(df: pd.DataFrame, metrics: Iterable[Any] | None) -> tuple[MetricSpec, ...]:
    known = {m["name"]: m for m in df.attrs.get("metrics", [])}
    if metrics is None:
        routing = df[col.ROUTING].astype(object).to_numpy() == col.Routing.SPLIT.value
        return metric_specs(
            spec
            for spec in map(metric_spec, known.values())
            if spec.name in df and df.loc[routing, spec.name].notna().any()
        )
    specs = metric_specs(_named(m, known) for m in metrics)
    absent = [spec.name for spec in specs if spec.name not in df]
    if absent:
        raise AnalysisError(f"no column for the metrics {absent}", context={"metrics": absent})
    return specs


def _named(metric: Any, known: Mapping[str, Any]) -> Any:
    if not isinstance(metric, str):
        return metric
    if metric in known:
        return known[metric]
    from experiments.metrics import load_default_registry

    entry = load_default_registry().get(metric)
    if entry is None:
        raise AnalysisError(f"unknown metric {metric!r}", context={"metric": metric})
    return entry


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


def _excluded(df: pd.DataFrame, routing: Any) -> tuple[Excluded, ...]:
    outside = (routing == col.Routing.STATIC.value) | (routing == col.Routing.FALLBACK.value)
    part = df.loc[outside, [col.ROUTING, col.REASON, col.COHORT]].astype(object)
    counts = part.fillna({col.COHORT: ""}).value_counts(sort=False)
    return tuple(
        Excluded(str(r), str(reason), str(variant) or None, int(n))
        for (r, reason, variant), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def _notices(
    df: pd.DataFrame,
    periods: Sequence[tuple[Period, Any]],
    excluded: Sequence[Excluded],
    settings: AnalysisSpec,
) -> tuple[Notice, ...]:
    notices = []
    if not periods:
        notices.append(
            Notice(NoticeKind.NO_SPLIT, "no session was randomised by a split of this flag")
        )
    elif len(periods) > 1 or settings.period is PeriodMode.LATEST:
        configs = "; ".join(
            f"period {p.label}: {dict(p.weights)}, version {'/'.join(p.flag_versions)}, "
            f"{p.start} to {p.end}"
            for p, _ in periods
        )
        notices.append(Notice(NoticeKind.PERIODS, f"the split changed; analysed apart: {configs}"))
    if any(p.configurations > 1 for p, _ in periods):
        notices.append(
            Notice(
                NoticeKind.POOLED_PERIODS,
                "periods with different weights or flag versions are pooled: a drift of the "
                "metrics over time can bias the comparison",
            )
        )
    clustered = sorted({p.bucket_unit for p, _ in periods} - col.SESSION_UNITS)
    if clustered:
        message = unit_of(clustered[0]).description
        notices.append(Notice(NoticeKind.CLUSTERED_UNIT, message))
    if excluded:
        total = sum(e.sessions for e in excluded)
        notices.append(
            Notice(
                NoticeKind.EXCLUDED_SESSIONS,
                f"{total:,} sessions were routed by a rule, the default or a fallback, "
                "not by the split: they are left out of the cohorts (see `excluded`)",
            )
        )
    dropped = [f"{n:,} {label}" for key, label in _DROPPED if (n := int(df.attrs.get(key, 0) or 0))]
    if dropped:
        text = "left out while loading: " + ", ".join(dropped)
        notices.append(Notice(NoticeKind.DROPPED_EVENTS, text))
    return tuple(notices)


class _Context:
    """What every period's analysis shares."""

    def __init__(
        self,
        settings: AnalysisSpec,
        specs: Sequence[MetricSpec],
        pre: pd.DataFrame,
        flag: Mapping[str, Any] | None,
        flag_key: str | None,
    ) -> None:
        self.settings, self.specs, self.pre = settings, specs, pre
        self.flag, self.flag_key = flag, flag_key

    def period(self, part: pd.DataFrame, period: Period, control: str | None) -> PeriodResult:
        variants = list(period.variants)
        ctl = control if control in variants else variants[0]
        unit = unit_of(period.bucket_unit)
        cluster = None
        if unit.clustered:
            cluster = col.UNIT_ID if col.UNIT_ID in part else col.TENANT_ID
        covariates, coverage = None, None
        if self.settings.cuped:
            covariates, coverage = pre_period_covariates(self.pre, part, self.specs)
        samples = cohort_samples(part, self.specs, variants, cluster=cluster, covariates=covariates)
        health = split_health(part, period, unit, cluster)
        shared = SegmentInput(
            self.specs, ctl, variants, self.settings, cluster, covariates, coverage
        )
        comparisons = metric_results(
            samples, self.specs, ctl, variants, self.settings, coverage=coverage
        )
        segments: list[SegmentResult] = []
        heterogeneity: list[HeterogeneityResult] = []
        for attribute in self.settings.segment_by:
            found, q = segment_results(part, attribute, shared)
            segments.extend(found)
            heterogeneity.extend(q)
        decide = Decision(
            control=ctl,
            variants=variants,
            srm_flagged=health.srm.flagged,
            power=self.settings.power,
            flag=self.flag,
            flag_key=self.flag_key,
            split_id=period.split_id,
        )
        days = period.days
        recommendations = (
            recommend(comparisons, decide, segment=None, sessions_per_day=period.sessions / days),
            *(
                recommend(s.comparisons, decide, segment=(s.attribute, s.level),
                          sessions_per_day=s.sessions / days)
                for s in segments
            ),
        )  # fmt: skip
        control_samples = [by_cohort[ctl] for by_cohort in samples.values()]
        error = StatError.NO_DATA if any(s.stats.n == 0 for s in control_samples) else None
        return PeriodResult(
            period, unit, ctl, health, cohort_summaries(samples), comparisons,
            tuple(segments), tuple(heterogeneity), recommendations, error,
        )  # fmt: skip
