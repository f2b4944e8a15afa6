"""The statistics objects an analysis is computed from, per period, segment, metric and cohort.

`analysis.frame_stats.experiment_stats` builds them from the sessions frame
(the one step that reads pandas); effects (`analysis.effects`), segments
(`analysis.segments`), health (`analysis.split_health`) and the
recommendation (`analysis.recommend`) take only these frozen objects:

    ExperimentStats
      periods[]  PeriodStats: the period, its unit, SplitCounts (health),
                 arms (metric -> cohort -> ArmStats), cohort summaries,
                 CUPED coverage, segmentations[]
        segmentations[]  Segmentation: one column, levels[] SegmentStats (arms)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analysis.metric_specs import MetricSpec
from analysis.periods import Period
from analysis.quantiles import QuantileEstimate
from analysis.results import CohortSummary, Excluded, Unit
from analysis.statistics import ClusterStats, ProportionStats, RatioStats, SampleStats
from analysis.variance import CupedStats

Statistic = SampleStats | ProportionStats | RatioStats | ClusterStats


@dataclass(frozen=True, slots=True)
class ArmStats:
    """One cohort's metric in a period (or one segment of it).

    `stats` is what the comparison takes (see `analysis.cohorts` for which
    class a metric gets); `cuped` the sums of the metric's linearisation and
    its pre-period covariate, when CUPED is asked for and some unit has a
    covariate; `quantiles` the cohort's effect quantiles (p50, p95), for a
    whole period whose unit is the session.
    """

    cohort: str
    metric: MetricSpec
    stats: Statistic
    n_missing: int
    cuped: CupedStats | None = None
    quantiles: tuple[QuantileEstimate, ...] = ()


Arms = Mapping[str, Mapping[str, ArmStats]]
"""metric name -> cohort -> arm, metrics and cohorts in the analysis's order."""


@dataclass(frozen=True, slots=True)
class CohortMix:
    """Sessions per cohort and level of `attribute` (`counts[cohort][level]`)."""

    attribute: str
    counts: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class SplitCounts:
    """What the health checks count: units per variant (in the split's order) and mixes."""

    observed: tuple[int, ...]
    mix: tuple[CohortMix, ...]


@dataclass(frozen=True, slots=True)
class SegmentStats:
    """One level of a segmenting column."""

    level: str
    sessions: int
    arms: Arms


@dataclass(frozen=True, slots=True)
class Segmentation:
    """A period broken down by one column: its observed levels, in sorted order."""

    attribute: str
    levels: tuple[SegmentStats, ...]


@dataclass(frozen=True, slots=True)
class PeriodStats:
    """One period: `coverage[metric]` is the share of sessions with a CUPED covariate."""

    period: Period
    unit: Unit
    counts: SplitCounts
    arms: Arms
    cohorts: tuple[CohortSummary, ...]
    coverage: Mapping[str, float] | None
    segmentations: tuple[Segmentation, ...]


@dataclass(frozen=True, slots=True)
class ExperimentStats:
    """A flag's periods, its sessions outside the cohorts, and what loading left out.

    `dropped` holds the loader's counts (`duplicate_assignments`,
    `duplicate_outcomes`, `orphan_outcomes`); `flag` the flag's definition.
    """

    flag_key: str | None
    flag: Mapping[str, Any] | None
    metrics: tuple[MetricSpec, ...]
    periods: tuple[PeriodStats, ...]
    excluded: tuple[Excluded, ...]
    dropped: Mapping[str, int]
