"""Experiment health: sample-ratio mismatch, small samples, cohort mix.

The chi-square tests are written out and checked in the tests against
`scipy.stats.chisquare` and `scipy.stats.chi2_contingency(correction=False)`;
p-values come from the chi-square survival function.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import special

from analysis.errors import AnalysisError, StatError

SRM_THRESHOLD = 0.001
MIN_SESSIONS = 100


class WarningKind(StrEnum):
    SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"
    SMALL_SAMPLE = "small_sample"
    IMBALANCED_MIX = "imbalanced_mix"


@dataclass(frozen=True, slots=True)
class HealthWarning:
    """A problem a reader of the results must see before trusting them."""

    kind: WarningKind
    subject: str
    message: str


@dataclass(frozen=True, slots=True)
class SrmResult:
    """Chi-square goodness of fit of cohort sizes to the configured weights."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    df: int
    p_value: float
    flagged: bool
    warning: HealthWarning | None = None
    error: StatError | None = None


@dataclass(frozen=True, slots=True)
class BalanceResult:
    """Chi-square test of independence between cohort and an attribute (region, tenant)."""

    attribute: str
    chi2: float
    df: int
    p_value: float
    flagged: bool
    warning: HealthWarning | None = None
    error: StatError | None = None


def _chi2_sf(x: float, df: int) -> float:
    return float(special.chdtrc(df, x))  # as scipy.stats.chi2.sf


def srm_test(
    observed: Sequence[int], weights: Sequence[float], *, threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Sample-ratio mismatch: expected counts are total * w / sum(w), flagged when p < threshold.

    A cohort with weight 0 and no sessions is left out; one with weight 0
    but sessions is a mismatch whatever the rest (chi2 = inf, p = 0).
    """
    counts, w = np.asarray(observed, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if counts.shape != w.shape or counts.ndim != 1 or (counts < 0).any() or (w < 0).any():
        raise AnalysisError(
            "observed counts and weights must be non-negative and of equal length",
            context={"observed": list(observed), "weights": list(weights)},
        )
    total = float(counts.sum())
    expected = total * w / w.sum() if w.sum() > 0 else np.zeros_like(w)
    sizes, means = tuple(int(c) for c in counts), tuple(float(e) for e in expected)
    keep = (w > 0) | (counts > 0)
    if total == 0 or keep.sum() < 2:
        error = StatError.NO_DATA if total == 0 else StatError.TOO_FEW_GROUPS
        return SrmResult(sizes, means, math.nan, 0, math.nan, False, error=error)
    o, e = counts[keep], expected[keep]
    chi2 = float(np.sum((o - e) ** 2 / e)) if (e > 0).all() else math.inf
    df = int(keep.sum()) - 1
    p = 0.0 if math.isinf(chi2) else _chi2_sf(chi2, df)
    warning = None
    if p < threshold:
        message = f"cohort sizes {sizes} do not match the weights {tuple(weights)} (p = {p:.2g})"
        warning = HealthWarning(WarningKind.SAMPLE_RATIO_MISMATCH, "split", message)
    return SrmResult(sizes, means, chi2, df, p, p < threshold, warning)


def small_sample_warnings(
    sessions: Mapping[str, int], *, minimum: int = MIN_SESSIONS
) -> tuple[HealthWarning, ...]:
    """One warning per cohort with fewer than `minimum` sessions."""
    return tuple(
        HealthWarning(
            WarningKind.SMALL_SAMPLE,
            cohort,
            f"cohort {cohort!r} has {n} sessions, fewer than {minimum}: "
            "intervals are unreliable and effects may be missed",
        )
        for cohort, n in sessions.items()
        if n < minimum
    )


def balance_test(
    counts: Mapping[str, Mapping[str, int]],
    *,
    attribute: str,
    threshold: float = SRM_THRESHOLD,
) -> BalanceResult:
    """Whether cohorts differ in their mix of `attribute` (chi-square of contingency).

    `counts[cohort][level]` is the number of sessions; levels or cohorts with
    no sessions are left out. No continuity correction.
    """
    levels = sorted({level for row in counts.values() for level in row})
    rows = [[row.get(level, 0) for level in levels] for row in counts.values()]
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(levels))
    if (table < 0).any():
        raise AnalysisError("session counts cannot be negative", context={"attribute": attribute})
    table = table[table.sum(axis=1) > 0]
    table = table[:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        error = StatError.NO_DATA if table.size == 0 else StatError.TOO_FEW_GROUPS
        return BalanceResult(attribute, math.nan, 0, math.nan, False, error=error)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    df = (table.shape[0] - 1) * (table.shape[1] - 1)
    p = _chi2_sf(chi2, df)
    warning = None
    if p < threshold:
        message = f"cohorts differ in their mix of {attribute} (chi2 = {chi2:.1f}, p = {p:.2g})"
        warning = HealthWarning(WarningKind.IMBALANCED_MIX, attribute, message)
    return BalanceResult(attribute, chi2, df, p, p < threshold, warning)
