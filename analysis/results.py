"""The result types of `analyze`: frozen dataclasses, and their JSON form.

`ExperimentResult.to_dict()` is plain JSON data (NaN and infinities as null,
enums as their values, tuples as arrays) matching
`docs/analysis-result.schema.json`; `to_json()` is its text. `to_frame()` (a
tidy DataFrame: one row per period, segment, metric and variant) and
`to_text()` (the terminal table) are `analysis.render`'s, imported when called.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, Literal

import orjson

from analysis.corrections import MetricDirection, NonInferiority
from analysis.errors import StatError
from analysis.health import BalanceResult, HealthWarning, SrmResult
from analysis.inference import Comparison, Heterogeneity
from analysis.metric_specs import MetricSpec
from analysis.periods import Period
from analysis.quantiles import QuantileComparison
from analysis.spec import AnalysisSpec

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1


class Action(StrEnum):
    SHIP = "ship"
    KEEP_CONTROL = "keep_control"
    KEEP_RUNNING = "keep_running"
    INVESTIGATE = "investigate"


class NoticeKind(StrEnum):
    PERIODS = "periods"
    EXCLUDED_SESSIONS = "excluded_sessions"
    CLUSTERED_UNIT = "clustered_unit"
    POOLED_PERIODS = "pooled_periods"
    DROPPED_EVENTS = "dropped_events"
    NO_SPLIT = "no_split"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the reader of the result must know about how it was computed."""

    kind: NoticeKind
    message: str


@dataclass(frozen=True, slots=True)
class Unit:
    """The randomisation unit; `clustered` when it is not the session (cluster-robust)."""

    bucket_unit: str
    clustered: bool
    description: str


@dataclass(frozen=True, slots=True)
class CohortSummary:
    """One cohort and metric: sessions, units, the mean as compared, per-session spread.

    `mean` is the metric the comparisons use (for a mean-rolled metric, the
    mean per turn: sum over turns / turns); `std` and the quantiles describe
    the per-session values. `n_units` counts tenants when they are the unit.
    """

    cohort: str
    metric: str
    n: int
    n_units: int
    n_missing: int
    mean: float
    std: float
    p50: float
    p95: float
    p99: float
    error: StatError | None = None


@dataclass(frozen=True, slots=True)
class CupedSummary:
    """CUPED on one comparison: pooled theta, variance reduction, covariate coverage."""

    theta: float
    variance_reduction: float
    coverage: float
    error: StatError | None = None


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One variant against the control on one metric.

    `p_value_adjusted` is set for metrics in the corrected family, None for
    guardrails, which carry `non_inferiority` instead. `significant` means the
    adjusted p-value is below alpha.
    """

    metric: str
    variant: str
    control: str
    guardrail: bool
    direction: MetricDirection
    comparison: Comparison
    p_value_adjusted: float | None
    significant: bool
    non_inferiority: NonInferiority | None
    quantiles: tuple[QuantileComparison, ...]
    cuped: CupedSummary | None

    @property
    def error(self) -> StatError | None:
        return self.comparison.error

    @property
    def beneficial(self) -> bool:
        """The absolute effect points the better way (whatever its significance)."""
        estimate = self.comparison.absolute.estimate
        lower = self.direction is MetricDirection.LOWER_IS_BETTER
        return bool(estimate < 0) if lower else bool(estimate > 0)


@dataclass(frozen=True, slots=True)
class Health:
    srm: SrmResult
    balance: tuple[BalanceResult, ...]
    warnings: tuple[HealthWarning, ...]


@dataclass(frozen=True, slots=True)
class SegmentResult:
    attribute: str
    level: str
    sessions: int
    comparisons: tuple[MetricResult, ...]


@dataclass(frozen=True, slots=True)
class HeterogeneityResult:
    """Cochran's Q across the levels of `attribute` for one metric and variant."""

    attribute: str
    metric: str
    variant: str
    heterogeneity: Heterogeneity


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What to do in one segment, why, and the flagd change that does it.

    `targeting` is None unless the action changes routing. Else it holds the
    flag and the split, and three equivalent ways to apply the change:
    `weights_patch` (whole period only), the body of `PATCH /v1/flags/{key}`
    setting the split's weights to 0/100; `replace_fractional_with`, what to
    put in place of the split's `fractional` node (for a segment: an `if` on
    the segment's attribute in front of the unchanged split); and `patch`,
    when the flag's definition was given, a JSON Patch (RFC 6902) replacing
    the flag's whole targeting.
    """

    segment: str
    action: Action
    variant: str | None
    message: str
    decision_metric: str | None
    sessions_needed: int | None
    days_needed: float | None
    targeting: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PeriodResult:
    period: Period
    unit: Unit
    control: str
    health: Health
    cohorts: tuple[CohortSummary, ...]
    comparisons: tuple[MetricResult, ...]
    segments: tuple[SegmentResult, ...]
    heterogeneity: tuple[HeterogeneityResult, ...]
    recommendations: tuple[Recommendation, ...]
    error: StatError | None = None


@dataclass(frozen=True, slots=True)
class Excluded:
    """Sessions of the flag in no cohort: routed by a rule, the default or a fallback."""

    routing: str
    reason: str
    variant: str | None
    sessions: int


@dataclass(frozen=True, slots=True)
class ExperimentResult:
    """Everything `analyze` found, per period."""

    flag_key: str | None
    settings: AnalysisSpec
    metrics: tuple[MetricSpec, ...]
    periods: tuple[PeriodResult, ...]
    excluded: tuple[Excluded, ...]
    notices: tuple[Notice, ...]
    error: StatError | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data matching `docs/analysis-result.schema.json`."""
        return {"schema_version": SCHEMA_VERSION, **_fields(self)}

    def to_json(self, *, indent: bool = False) -> str:
        option = orjson.OPT_INDENT_2 if indent else 0
        return orjson.dumps(self.to_dict(), option=option).decode()

    def to_frame(
        self, kind: Literal["comparisons", "cohorts", "recommendations"] = "comparisons"
    ) -> pd.DataFrame:
        """A tidy DataFrame: comparisons (with segments), cohort summaries or recommendations."""
        from analysis.render import frame_of

        return frame_of(self, kind)

    def to_text(self) -> str:
        """The terminal table (`analysis.render`)."""
        from analysis.render import render_text

        return render_text(self)


def plain(value: Any) -> Any:
    """Dataclasses, enums, tuples and floats as JSON data (non-finite floats as None)."""
    if isinstance(value, AnalysisSpec):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item"):  # a numpy scalar
        return plain(value.item())
    raise TypeError(f"cannot convert {type(value).__name__} to JSON data")


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
