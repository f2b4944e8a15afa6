"""Effects per segment (region, tenant, or any column) and their heterogeneity.

Each level of a segmenting column is analysed like the whole period (same
unit, same CUPED covariates, p-values corrected within the segment's own
family), without quantile effects. Heterogeneity between the levels is
Cochran's Q on the relative effects (a common relative effect is the
natural null when baselines differ between regions), with Higgins' I^2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis.cohorts import cohort_samples
from analysis.effects import metric_results
from analysis.errors import AnalysisError
from analysis.inference import cochran_q
from analysis.metric_specs import MetricSpec
from analysis.report import HeterogeneityResult, SegmentResult
from analysis.spec import AnalysisSpec


@dataclass(frozen=True, slots=True)
class SegmentInput:
    """What every segment of a period shares."""

    specs: Sequence[MetricSpec]
    control: str
    variants: Sequence[str]
    settings: AnalysisSpec
    cluster: str | None
    covariates: Mapping[str, NDArray[np.float64]] | None
    coverage: Mapping[str, float] | None


def levels(frame: pd.DataFrame, attribute: str) -> list[tuple[str, NDArray[np.bool_]]]:
    """Each observed level of `attribute` (sorted, missing values left out) with its row mask."""
    if attribute not in frame:
        raise AnalysisError(
            f"cannot segment by {attribute!r}: no such column",
            context={"segment_by": attribute, "columns": list(map(str, frame.columns))},
        )
    codes, uniques = pd.factorize(frame[attribute].astype(object))
    names = {str(u): i for i, u in enumerate(uniques)}
    return [(name, np.asarray(codes == names[name])) for name in sorted(names)]


def segment_results(
    frame: pd.DataFrame, attribute: str, shared: SegmentInput
) -> tuple[tuple[SegmentResult, ...], tuple[HeterogeneityResult, ...]]:
    """Per-level results for `attribute`, and Cochran's Q per metric and variant."""
    segments = []
    for level, mask in levels(frame, attribute):
        covariates = (
            None
            if shared.covariates is None
            else {name: x[mask] for name, x in shared.covariates.items()}
        )
        samples = cohort_samples(
            frame[mask],
            shared.specs,
            shared.variants,
            cluster=shared.cluster,
            covariates=covariates,
        )
        results = metric_results(
            samples,
            shared.specs,
            shared.control,
            shared.variants,
            shared.settings,
            coverage=shared.coverage,
            quantiles=False,
        )
        segments.append(SegmentResult(attribute, level, int(mask.sum()), results))
    return tuple(segments), heterogeneity(attribute, segments)


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
