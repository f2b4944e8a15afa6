"""The health of one period of a split: SRM over its units, small cohorts, cohort mix.

When the split buckets something else than the session (a tenant), the
split assigns units: the sample-ratio test counts units, small-sample
warnings count units (fewer than 20 per cohort), and only the region mix is
compared (a tenant is in one cohort by construction).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import columns as col
from analysis.health import (
    MIN_SESSIONS,
    BalanceResult,
    balance_test,
    small_sample_warnings,
    srm_test,
)
from analysis.periods import Period
from analysis.report import Health, Unit

MIN_CLUSTERS = 20


def unit_of(bucket_unit: str) -> Unit:
    """The unit of analysis of a split bucketing by `bucket_unit`, said in words."""
    if bucket_unit in col.SESSION_UNITS:
        return Unit(
            bucket_unit, False, "sessions are randomised independently: the session is the unit"
        )
    what = "the tenant" if bucket_unit == "tenant_id" else f"the bucketing key ({bucket_unit})"
    return Unit(
        bucket_unit,
        True,
        f"the split buckets by {bucket_unit}: sessions of one unit share a variant and are not "
        f"independent, so {what} is the unit of analysis (cluster-robust delta method on per-unit "
        "sums; SRM over units)",
    )


def split_health(part: pd.DataFrame, period: Period, unit: Unit, cluster: str | None) -> Health:
    """SRM, small-sample warnings and balance of one period (`cluster`: the unit column)."""
    variants = list(period.variants)
    cohort = pd.Categorical(part[col.COHORT].astype(object), categories=variants).codes
    cohort = cohort[cohort >= 0].astype(np.int64)
    if cluster is not None:  # one count per unit: the split assigns units, not sessions
        units = pd.factorize(part[cluster])[0][part[col.COHORT].isin(variants).to_numpy()]
        cohort = np.unique(units.astype(np.int64) * len(variants) + cohort) % len(variants)
    observed = np.bincount(cohort, minlength=len(variants)).tolist()
    srm = srm_test(observed, [w for _, w in period.weights])
    minimum = MIN_CLUSTERS if unit.clustered else MIN_SESSIONS
    small = small_sample_warnings(dict(zip(variants, observed, strict=True)), minimum=minimum)
    attributes = [col.REGION] if unit.clustered else [col.REGION, col.TENANT_ID]
    balance = tuple(_balance(part, variants, a) for a in attributes if a in part)
    warnings = [w for w in (srm.warning, *small, *(b.warning for b in balance)) if w is not None]
    return Health(srm, balance, tuple(warnings))


def _balance(part: pd.DataFrame, variants: Sequence[str], attribute: str) -> BalanceResult:
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
    return balance_test(counts, attribute=attribute)
