"""Effects per segment (region, tenant, or any column) and their heterogeneity.

Each level of a segmenting column is analysed like the whole period (same
unit, same CUPED covariates, p-values corrected within the segment's own
family), without quantile effects. Heterogeneity between the levels is
Cochran's Q on the relative effects (a common relative effect is the
natural null when baselines differ between regions), with Higgins' I^2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analysis.effects import metric_results
from analysis.experiment_stats import Segmentation
from analysis.inference import cochran_q
from analysis.results import HeterogeneityResult, SegmentResult
from analysis.spec import AnalysisSpec


def segment_results(
    segmentation: Segmentation,
    control: str,
    variants: Sequence[str],
    spec: AnalysisSpec,
    *,
    coverage: Mapping[str, float] | None = None,
) -> tuple[tuple[SegmentResult, ...], tuple[HeterogeneityResult, ...]]:
    """Per-level results of one segmenting column, and Cochran's Q per metric and variant."""
    attribute = segmentation.attribute
    segments = tuple(
        SegmentResult(
            attribute,
            level.level,
            level.sessions,
            metric_results(level.arms, control, variants, spec, coverage=coverage),
        )
        for level in segmentation.levels
    )
    return segments, heterogeneity(attribute, segments)


def heterogeneity(
    attribute: str, segments: Sequence[SegmentResult]
) -> tuple[HeterogeneityResult, ...]:
    """Cochran's Q over the levels' relative effects, per metric and variant."""
    keys = dict.fromkeys((r.metric, r.variant) for s in segments for r in s.comparisons)
    out = []
    for metric, variant in keys:
        effects = [
            r.comparison.relative
            for s in segments
            for r in s.comparisons
            if (r.metric, r.variant) == (metric, variant)
        ]
        q = cochran_q([e.estimate for e in effects], [e.std_error for e in effects])
        out.append(HeterogeneityResult(attribute, metric, variant, q))
    return tuple(out)
