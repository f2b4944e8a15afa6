"""Column names of the one-row-per-session DataFrame (`load_sessions` -> `analyze`).

Every module that reads or writes that frame names its columns from here, so a
rename happens in one place. Metric columns are named after the metric
(`ttfb_ms`); a metric rolled up by its mean also carries the per-session sum
and count of its values (`ttfb_ms__sum`, `ttfb_ms__count`), the parts of the
ratio metric "mean per turn".

The session's context, as given when it was created, is one column per name:
`feature.<name>` for a feature switch (nullable boolean) and `attr.<name>` for
an attribute (categorical of text: strings as given, other values as their
JSON text, `true`, `12`, `2.5`); missing where the session did not give it.
`analyze(df, segment_by="attr.plan")` breaks effects down by one of them.
"""

from __future__ import annotations

from enum import StrEnum

SESSION_ID = "session_id"
TENANT_ID = "tenant_id"
REGION = "region"
TS = "ts"
"""Decision time of the session's assignment, `datetime64[ms, UTC]`."""
COHORT = "cohort"
"""The variant the flag served the session (missing when the flag was not evaluated)."""
REASON = "reason"
SPLIT_ID = "split_id"
SPLIT_WEIGHTS = "split_weights"
"""The split's weights as compact JSON in declaration order: `{"a":50,"b":50}`."""
BUCKET_UNIT = "bucket_unit"
UNIT_ID = "unit_id"
"""The randomisation unit of the session: its session id, or its tenant id for a
split bucketed by `tenant_id`, else the bucketing key itself."""
FLAG_VERSION = "flag_version"
ROUTED_BY_SPLIT = "routed_by_split"
ROUTING = "routing"
FALLBACK = "fallback"
"""The router's fallback reason when it could not route the flag's value (e.g.
`unavailable_in_region`) and used the catalog default; missing otherwise."""
TURNS = "turns"
"""Turn-level outcome events recorded for the session."""

SESSION_UNITS = frozenset({"targetingKey", "session_id"})
"""Bucketing units that mean "the session" (flagd's targeting key is the session id)."""

FEATURE_PREFIX = "feature."
ATTRIBUTE_PREFIX = "attr."

SUM_SUFFIX = "__sum"
COUNT_SUFFIX = "__count"


class Routing(StrEnum):
    """How a session came to its variant; only `SPLIT` sessions form cohorts."""

    SPLIT = "split"
    """Randomised by the flag's fractional split (reason SPLIT)."""
    STATIC = "static"
    """Served by a targeting rule or the default variant, not randomised."""
    FALLBACK = "fallback"
    """The flag was in error or disabled, or the router could not use the variant
    served (`FALLBACK` column); the session ran on the catalog default."""
    PRE_PERIOD = "pre_period"
    """Before the first split assignment: kept only for CUPED covariates."""


SESSION_COLUMNS = (
    SESSION_ID,
    TENANT_ID,
    REGION,
    TS,
    COHORT,
    REASON,
    SPLIT_ID,
    SPLIT_WEIGHTS,
    BUCKET_UNIT,
    UNIT_ID,
    FLAG_VERSION,
    ROUTED_BY_SPLIT,
    ROUTING,
    FALLBACK,
    TURNS,
)
"""The columns every frame of `load_sessions` has, before the metric columns
(which the `feature.*` and `attr.*` columns follow)."""

REQUIRED_COLUMNS = (SESSION_ID, TENANT_ID, REGION, TS, COHORT, SPLIT_ID, SPLIT_WEIGHTS, ROUTING)
"""What `analyze` needs; `BUCKET_UNIT`, `UNIT_ID` and `FLAG_VERSION` are optional."""

DROPPED_COUNTS = ("duplicate_assignments", "duplicate_outcomes", "orphan_outcomes")
"""The `df.attrs` counts of the events `load_sessions` left out (the result's notices)."""


def sum_column(metric: str) -> str:
    """The per-session sum of a mean-rolled metric's values."""
    return metric + SUM_SUFFIX


def count_column(metric: str) -> str:
    """The per-session count of a mean-rolled metric's values (turns that reported it)."""
    return metric + COUNT_SUFFIX


def feature_column(name: str) -> str:
    """The column of the session's feature switch `name`."""
    return FEATURE_PREFIX + name


def attribute_column(name: str) -> str:
    """The column of the session's attribute `name`."""
    return ATTRIBUTE_PREFIX + name
