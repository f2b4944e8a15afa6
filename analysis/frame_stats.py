"""The one step from the sessions frame to statistics objects: `experiment_stats`.

It reads the frame of `load_sessions` (columns: `analysis.columns`): the
metrics to analyse, the sessions outside the cohorts (routed by a rule, the
default or a fallback: `excluded`), the periods (`analysis.frame_periods`),
and per period and level of a segmenting column the arrays that
`analysis.cohorts` reduces to `ArmStats`, with the counts of the health
checks and the CUPED covariates (each session's tenant's pre-period mean).
Everything after this module takes the frozen objects of
`analysis.experiment_stats` and no pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis import columns as col
from analysis.cohorts import SessionArrays, period_arms, segment_arms, tenant_covariates
from analysis.errors import AnalysisError
from analysis.experiment_stats import (
    CohortMix,
    ExperimentStats,
    PeriodStats,
    Segmentation,
    SegmentStats,
    SplitCounts,
)
from analysis.frame_periods import split_periods
from analysis.metric_specs import MetricSpec, metric_spec, metric_specs
from analysis.periods import Period
from analysis.results import Excluded
from analysis.spec import AnalysisSpec
from analysis.split_health import unit_of
from analysis.targeting import flag_document

Floats = NDArray[np.float64]


def experiment_stats(df: pd.DataFrame, spec: AnalysisSpec, flag: Any = None) -> ExperimentStats:
    """The statistics of the sessions of one flag (a frame of `load_sessions`) that `spec` asks
    for; `flag`: its flagd definition (default `df.attrs["flag"]`)."""
    _check_columns(df)
    attrs = df.attrs
    document = flag_document(flag if flag is not None else attrs.get("flag"))
    specs = _metrics(df, spec.metrics)
    routing = df[col.ROUTING].astype(object).to_numpy()
    rows = df[routing == col.Routing.SPLIT.value]
    pre = df[routing == col.Routing.PRE_PERIOD.value]
    periods = tuple(
        _PeriodRows(rows[mask], period, specs, spec, pre).stats()
        for period, mask in split_periods(rows, spec.period)
    )
    flag_key = attrs.get("flag_key") or (document or {}).get("key")
    dropped = {key: int(attrs.get(key, 0) or 0) for key in col.DROPPED_COUNTS}
    return ExperimentStats(flag_key, document, specs, periods, _excluded(df, routing), dropped)


def _check_columns(df: pd.DataFrame) -> None:
    missing = [name for name in col.REQUIRED_COLUMNS if name not in df]
    if missing:
        raise AnalysisError(
            f"the frame lacks the columns {missing} (see analysis.columns)",
            context={"missing": missing},
        )


def _metrics(df: pd.DataFrame, metrics: Iterable[Any] | None) -> tuple[MetricSpec, ...]:
    """The metrics asked for, else those of `df.attrs["metrics"]` with data in a split session."""
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


def _excluded(df: pd.DataFrame, routing: Any) -> tuple[Excluded, ...]:
    outside = (routing == col.Routing.STATIC.value) | (routing == col.Routing.FALLBACK.value)
    part = df.loc[outside, [col.ROUTING, col.REASON, col.COHORT]].astype(object)
    counts = part.fillna({col.COHORT: ""}).value_counts(sort=False)
    return tuple(
        Excluded(str(r), str(reason), str(variant) or None, int(n))
        for (r, reason, variant), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


@dataclass(frozen=True, slots=True, eq=False)
class _PeriodRows:
    """The split-routed rows of one period, read into statistics objects."""

    part: pd.DataFrame
    period: Period
    specs: Sequence[MetricSpec]
    spec: AnalysisSpec
    pre: pd.DataFrame

    def stats(self) -> PeriodStats:
        unit = unit_of(self.period.bucket_unit)
        cluster = None
        if unit.clustered:
            cluster = col.UNIT_ID if col.UNIT_ID in self.part else col.TENANT_ID
        covariates, coverage = None, None
        if self.spec.cuped:
            covariates, coverage = _covariates(self.pre, self.part, self.specs)
        sessions = _sessions(self.part, self.specs, cluster, covariates)
        variants = self.period.variants
        arms, cohorts = period_arms(
            sessions, self.specs, variants, alpha=self.spec.alpha, coverage=coverage
        )
        levels = _Levels(self.part, self.specs, variants, cluster, covariates, coverage)
        segmentations = tuple(levels.of(attribute) for attribute in self.spec.segment_by)
        counts = _split_counts(self.part, variants, cluster)
        return PeriodStats(self.period, unit, counts, arms, cohorts, coverage, segmentations)


@dataclass(frozen=True, slots=True, eq=False)
class _Levels:
    """The levels of a period's segmenting columns, each analysed like the period."""

    part: pd.DataFrame
    specs: Sequence[MetricSpec]
    variants: Sequence[str]
    cluster: str | None
    covariates: Mapping[str, Floats] | None
    coverage: Mapping[str, float] | None

    def of(self, attribute: str) -> Segmentation:
        """Each observed level of `attribute` (sorted, missing values left out)."""
        if attribute not in self.part:
            raise AnalysisError(
                f"cannot segment by {attribute!r}: no such column",
                context={"segment_by": attribute, "columns": list(map(str, self.part.columns))},
            )
        codes, uniques = pd.factorize(self.part[attribute].astype(object))
        names = {str(u): i for i, u in enumerate(uniques)}
        masks = [(name, np.asarray(codes == names[name])) for name in sorted(names)]
        return Segmentation(attribute, tuple(self._level(name, mask) for name, mask in masks))

    def _level(self, level: str, mask: NDArray[np.bool_]) -> SegmentStats:
        covariates = self.covariates
        if covariates is not None:
            covariates = {name: x[mask] for name, x in covariates.items()}
        sessions = _sessions(self.part[mask], self.specs, self.cluster, covariates)
        arms = segment_arms(sessions, self.specs, self.variants, coverage=self.coverage)
        return SegmentStats(level, int(mask.sum()), arms)


def _sessions(
    frame: pd.DataFrame,
    specs: Sequence[MetricSpec],
    cluster: str | None,
    covariates: Mapping[str, Floats] | None,
) -> SessionArrays:
    """`cluster` names the column of the randomisation unit when it is not the session;
    `covariates[metric]` is aligned with the rows of `frame`."""
    cohorts = frame[col.COHORT].astype(object).to_numpy()
    clusters = None if cluster is None else pd.factorize(frame[cluster])[0].astype(np.int64)
    metrics = {spec.name: _metric_arrays(frame, spec) for spec in specs}
    return SessionArrays(cohorts, clusters, metrics, covariates)


def _metric_arrays(frame: pd.DataFrame, spec: MetricSpec) -> tuple[Floats, Floats, Floats]:
    """Per-session value, numerator and denominator of a metric (NaN value: no data)."""
    values = frame[spec.name].to_numpy(dtype=np.float64)
    if spec.ratio and col.sum_column(spec.name) in frame:
        sums = frame[col.sum_column(spec.name)].to_numpy(dtype=np.float64)
        counts = frame[col.count_column(spec.name)].to_numpy(dtype=np.float64)
        return values, sums, counts
    return values, values, np.ones_like(values)


def _covariates(
    pre: pd.DataFrame, rows: pd.DataFrame, specs: Sequence[MetricSpec]
) -> tuple[dict[str, Floats], dict[str, float]]:
    pre_codes, row_codes, n_tenants = _shared_codes(pre[col.TENANT_ID], rows[col.TENANT_ID])
    values = {spec.name: pre[spec.name].to_numpy(dtype=np.float64) for spec in specs}
    return tenant_covariates(pre_codes, row_codes, n_tenants, values)


def _shared_codes(
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


def _split_counts(part: pd.DataFrame, variants: Sequence[str], cluster: str | None) -> SplitCounts:
    """Units per variant (one count per unit when `cluster` names the unit: the split
    assigns units, not sessions) and the cohort mix of regions (and of tenants, unless
    tenants are the unit: a tenant is then in one cohort by construction)."""
    variants = list(variants)
    cohort = pd.Categorical(part[col.COHORT].astype(object), categories=variants).codes
    cohort = cohort[cohort >= 0].astype(np.int64)
    if cluster is not None:
        units = pd.factorize(part[cluster])[0][part[col.COHORT].isin(variants).to_numpy()]
        cohort = np.unique(units.astype(np.int64) * len(variants) + cohort) % len(variants)
    observed = tuple(int(n) for n in np.bincount(cohort, minlength=len(variants)))
    attributes = [col.REGION] if cluster is not None else [col.REGION, col.TENANT_ID]
    return SplitCounts(observed, tuple(_mix(part, variants, a) for a in attributes if a in part))


def _mix(part: pd.DataFrame, variants: Sequence[str], attribute: str) -> CohortMix:
    """Cohort x attribute contingency table from integer codes (no crosstab)."""
    cohort = pd.Categorical(part[col.COHORT].astype(object), categories=variants).codes
    levels, names = pd.factorize(part[attribute].astype(object))
    keep = (cohort >= 0) & (levels >= 0)
    cells = np.bincount(
        cohort[keep].astype(np.int64) * len(names) + levels[keep],
        minlength=len(variants) * len(names),
    ).reshape(len(variants), len(names))
    counts = {
        v: dict(zip(map(str, names), map(int, row), strict=True))
        for v, row in zip(variants, cells, strict=True)
    }
    return CohortMix(attribute, counts)
