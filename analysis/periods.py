"""Periods of an experiment: stretches with one split, one weighting and one flag version.

Only sessions randomised by the same split with the same weights are
comparable: when the weights change, the share of each cohort changes over
time, and any drift of the metrics over time then biases a pooled
comparison (Simpson's paradox). A new flag version may change who is
eligible. So by default (`PeriodMode.SPLIT`) every distinct (split id,
weights, flag version) is analysed on its own, numbered in the order of its
first session; `LATEST` keeps only the latest of them; `POOLED` pools every
configuration of a split (with a notice), its expected cohort shares being
the session-weighted average of the configured ones. The grouping of the
sessions is `analysis.frame_periods`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

OVERALL = "all"
"""The segment label of a whole period."""

Weights = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Period:
    """One analysed stretch: its split, weights (as configured, or pooled shares), versions.

    `configurations` counts the (weights, flag version) pairs it holds: 1
    unless pooled. `start` and `end` are the first and last session's
    decision times (ISO 8601).
    """

    label: str
    split_id: str
    weights: Weights
    flag_versions: tuple[str, ...]
    bucket_unit: str
    start: str
    end: str
    sessions: int
    configurations: int = 1

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(variant for variant, _ in self.weights)

    @property
    def days(self) -> float:
        """Length in days (at least one hour, so that rates stay finite)."""
        elapsed = datetime.fromisoformat(self.end) - datetime.fromisoformat(self.start)
        return max(elapsed.total_seconds(), 3600.0) / 86400.0


def parse_weights(text: str) -> Weights:
    """`{"a":50,"b":50}` -> `(("a", 50.0), ("b", 50.0))`, in declaration order."""
    return tuple((str(k), float(v)) for k, v in orjson.loads(text).items())


def pooled_weights(configs: Sequence[tuple[Weights, int]]) -> Weights:
    """The configured weights, or with several configurations the session-weighted shares (%)."""
    if len(configs) == 1:
        return configs[0][0]
    variants: dict[str, float] = {}
    total = sum(n for _, n in configs)
    for weights, n in configs:
        weight_sum = sum(w for _, w in weights) or 1.0
        for variant, w in weights:
            variants[variant] = variants.get(variant, 0.0) + 100.0 * n * w / weight_sum / total
    return tuple(variants.items())
