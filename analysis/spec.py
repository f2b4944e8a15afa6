"""What an analysis computes, declared once: the frozen `AnalysisSpec` and its enums.

`analyze`, the job runner behind `voxroute analyze` and
`GET /v1/experiments/{flag}/results` (`service.analysis_jobs`) and the
notebook all take an `AnalysisSpec`. The fields a user sets from the command
line or the query string carry an `Option` in their metadata; `service/`
derives the argparse flags and the FastAPI query model from `options()`, so
a new option, choice or limit is declared here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from analysis.errors import MIN_ALPHA, AnalysisError, check_alpha
from analysis.sequential import DEFAULT_TUNING_N

if TYPE_CHECKING:
    from analysis.metric_specs import MetricSpec


class CorrectionMethod(StrEnum):
    """The multiple-testing correction over a family of tested metrics and variants."""

    HOLM = "holm"
    """Holm-Bonferroni: the family-wise error rate."""
    BENJAMINI_HOCHBERG = "bh"
    """Benjamini-Hochberg: the false discovery rate (also read from `benjamini_hochberg`)."""

    @classmethod
    def _missing_(cls, value: object) -> CorrectionMethod | None:
        return cls.BENJAMINI_HOCHBERG if value == "benjamini_hochberg" else None


class PeriodMode(StrEnum):
    """Which periods of a split are analysed (see `analysis.periods`)."""

    SPLIT = "split"
    """Each (weights, flag version) apart."""
    LATEST = "latest"
    """Only the latest of them."""
    POOLED = "pooled"
    """Every configuration of a split together."""


@dataclass(frozen=True, slots=True)
class Option:
    """A field of `AnalysisSpec` as a user sets it: `--name` and the query parameter `name`.

    `kind` (`bool`, `float`, `str` or an enum) and `default` are the field's
    as `options()` fills them in; a field holding a tuple of strings takes one
    string (default None: the empty tuple).
    """

    name: str
    help: str = ""
    gt: float | None = None
    lt: float | None = None
    ge: float | None = None
    field: str = ""
    kind: type = str
    default: Any = None


def _option(
    name: str,
    help: str = "",
    *,
    gt: float | None = None,
    lt: float | None = None,
    ge: float | None = None,
) -> dict[str, Option]:
    return {"option": Option(name, help, gt, lt, ge)}


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    """The options of one analysis; wrong values raise `AnalysisError` naming the field.

    `segment_by`: columns to break effects down by (`region`, `tenant_id`,
    `attr.<name>`, or any column of the frame). `control`: default the flag's
    metadata `control`, else the split's first variant. `correction` applies
    to the tested (non-guardrail) metrics. `sequential`: always-valid
    intervals tuned for `tuning_n` units in total. `period`: see
    `PeriodMode`. `power`: of the sessions still needed by a keep-running
    recommendation. `metrics`: names (or metric definitions) to analyse;
    None: every metric of the frame with data.
    """

    segment_by: tuple[str, ...] = field(
        default=(), metadata=_option("segment", "Break effects down by this column")
    )
    sequential: bool = field(
        default=False, metadata=_option("sequential", "Always-valid (sequential) intervals")
    )
    cuped: bool = field(
        default=False, metadata=_option("cuped", "CUPED with the tenant's pre-period mean")
    )
    correction: CorrectionMethod = field(
        default=CorrectionMethod.HOLM, metadata=_option("correction")
    )
    period: PeriodMode = field(default=PeriodMode.SPLIT, metadata=_option("period"))
    control: str | None = field(
        default=None, metadata=_option("control", "Default: the flag's `control`")
    )
    alpha: float = field(default=0.05, metadata=_option("alpha", ge=MIN_ALPHA, lt=1))
    tuning_n: float = DEFAULT_TUNING_N
    power: float = 0.8
    metrics: tuple[str | MetricSpec, ...] | None = None

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        check_alpha(self.power, "power")
        if not self.tuning_n > 0:
            raise AnalysisError("tuning_n must be positive", context={"tuning_n": self.tuning_n})
        _set(self, "correction", _member(CorrectionMethod, self.correction, "correction"))
        _set(self, "period", _member(PeriodMode, self.period, "period"))
        _set(self, "segment_by", _names(self.segment_by))
        if self.metrics is not None:
            _set(self, "metrics", _metrics(self.metrics))

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> AnalysisSpec:
        """The spec of the options in `values` (by their public names; others are ignored)."""
        given = {o.field: values[o.name] for o in options() if o.name in values}
        return cls(**given)

    def replace(self, **changes: Any) -> AnalysisSpec:
        """A copy with `changes` (field names), checked like a new spec."""
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """The result's `settings` (docs/analysis-result.schema.json): the options that
        shape the numbers; the control is reported per period, the metrics apart."""
        return {
            "alpha": self.alpha,
            "correction": self.correction.value,
            "sequential": self.sequential,
            "tuning_n": self.tuning_n,
            "cuped": self.cuped,
            "period": self.period.value,
            "segment_by": list(self.segment_by),
            "power": self.power,
        }


def options() -> tuple[Option, ...]:
    """The fields a user sets (CLI flags, query parameters), in declaration order."""
    found = []
    for spec_field in dataclasses.fields(AnalysisSpec):
        option = spec_field.metadata.get("option")
        if option is not None:
            default = spec_field.default
            kind = str if default is None or isinstance(default, tuple) else type(default)
            value = None if isinstance(default, tuple) else default
            found.append(
                dataclasses.replace(option, field=spec_field.name, kind=kind, default=value)
            )
    return tuple(found)


def _set(spec: AnalysisSpec, name: str, value: Any) -> None:
    object.__setattr__(spec, name, value)  # normalising a frozen instance in __post_init__


def _member(kind: type[StrEnum], value: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = [m.value for m in kind]
        raise AnalysisError(
            f"{name} must be one of {choices}, got {value!r}", context={name: value}
        ) from None


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _metrics(value: Iterable[Any]) -> tuple[str | MetricSpec, ...]:
    from analysis.metric_specs import metric_spec

    return tuple(m if isinstance(m, str) else metric_spec(m) for m in value)
