"""Periods of an experiment: stretches with one split, one weighting and one flag version.

Only sessions randomised by the same split with the same weights are
comparable: when the weights change, the share of each cohort changes over
time, and any drift of the metrics over time then biases a pooled
comparison (Simpson's paradox). A new flag version may change who is
eligible. So by default (`how="split"`) every distinct (split id, weights,
flag version) is analysed on its own, numbered in the order of its first
session; `"latest"` keeps only the latest of them; `"pooled"` pools every
configuration of a split (with a notice), its expected cohort shares being
the session-weighted average of the configured ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
from numpy.typing import NDArray

from analysis import columns as col
from analysis.spec import PeriodMode


@dataclass(frozen=True, slots=True)
class Period:
    """One analysed stretch: its split, weights (as configured, or pooled shares), versions.

    `configurations` counts the (weights, flag version) pairs it holds: 1
    unless pooled. `start` and `end` are the first and last session's
    decision times (ISO 8601).
    """

    label: str
    split_id: str
    weights: tuple[tuple[str, float], ...]
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
        seconds = float((pd.Timestamp(self.end) - pd.Timestamp(self.start)).total_seconds())
        return max(seconds, 3600.0) / 86400.0


def parse_weights(text: str) -> tuple[tuple[str, float], ...]:
    """`{"a":50,"b":50}` -> `(("a", 50.0), ("b", 50.0))`, in declaration order."""
    return tuple((str(k), float(v)) for k, v in orjson.loads(text).items())


def split_periods(rows: pd.DataFrame, mode: PeriodMode) -> list[tuple[Period, NDArray[np.bool_]]]:
    """The periods of the split-routed `rows`, each with its row mask, oldest first."""
    if rows.empty:
        return []
    keys = [col.SPLIT_ID] if mode is PeriodMode.POOLED else [col.SPLIT_ID, col.SPLIT_WEIGHTS]
    if mode is not PeriodMode.POOLED and col.FLAG_VERSION in rows:
        keys.append(col.FLAG_VERSION)
    group = rows.groupby(keys, sort=False, observed=True, dropna=False).ngroup().to_numpy()
    firsts = rows[col.TS].groupby(group).min()
    order = firsts.sort_values(kind="stable").index.to_numpy()
    periods = [_period(rows, group == g, str(i + 1)) for i, g in enumerate(order)]
    return periods[-1:] if mode is PeriodMode.LATEST else periods


def _period(
    rows: pd.DataFrame, mask: NDArray[np.bool_], label: str
) -> tuple[Period, NDArray[np.bool_]]:
    part = rows[mask]
    configs = part.groupby(
        [part[col.SPLIT_WEIGHTS].astype(object), _versions(part)], sort=False, observed=True
    ).size()
    weights = _pooled_weights([(parse_weights(w), int(n)) for (w, _), n in configs.items()])
    ts = part[col.TS]
    unit = part[col.BUCKET_UNIT].iloc[0] if col.BUCKET_UNIT in part else None
    period = Period(
        label=label,
        split_id=str(part[col.SPLIT_ID].iloc[0]),
        weights=weights,
        flag_versions=tuple(sorted({str(v) for _, v in configs.index})),
        bucket_unit=str(unit) if isinstance(unit, str) else "targetingKey",
        start=ts.min().isoformat(),
        end=ts.max().isoformat(),
        sessions=int(mask.sum()),
        configurations=len(configs),
    )
    return period, mask


def _versions(part: pd.DataFrame) -> pd.Series:
    if col.FLAG_VERSION in part:
        return part[col.FLAG_VERSION].astype(object).fillna("")
    return pd.Series("", index=part.index)


def _pooled_weights(
    configs: Sequence[tuple[tuple[tuple[str, float], ...], int]],
) -> tuple[tuple[str, float], ...]:
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
