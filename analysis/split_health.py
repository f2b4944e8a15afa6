"""The health of one period of a split: SRM over its units, small cohorts, cohort mix.

When the split buckets something else than the session (a tenant), the
split assigns units: the sample-ratio test counts units, small-sample
warnings count units (fewer than 20 per cohort), and only the region mix is
compared (a tenant is in one cohort by construction). The counts come from
`analysis.frame_stats` as `SplitCounts`.
"""

from __future__ import annotations

from analysis import columns as col
from analysis.experiment_stats import SplitCounts
from analysis.health import MIN_SESSIONS, balance_test, small_sample_warnings, srm_test
from analysis.periods import Period
from analysis.results import Health, Unit

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


def split_health(counts: SplitCounts, period: Period, unit: Unit) -> Health:
    """SRM, small-sample warnings and balance of one period."""
    srm = srm_test(counts.observed, [w for _, w in period.weights])
    minimum = MIN_CLUSTERS if unit.clustered else MIN_SESSIONS
    sizes = dict(zip(period.variants, counts.observed, strict=True))
    small = small_sample_warnings(sizes, minimum=minimum)
    balance = tuple(balance_test(mix.counts, attribute=mix.attribute) for mix in counts.mix)
    warnings = [w for w in (srm.warning, *small, *(b.warning for b in balance)) if w is not None]
    return Health(srm, balance, tuple(warnings))
