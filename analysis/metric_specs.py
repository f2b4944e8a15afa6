"""What `analysis/` needs to know of a metric, read from the metric registry.

The registry (`experiments.metrics`) describes each metric by its name, type
(latency, count, proportion, continuous), unit, direction (lower or higher is
better), roll-up over a session's events (mean, sum, last, max), whether it is
a guardrail and its non-inferiority margin (relative to the control's mean).
`MetricSpec` is that description as the statistics read it: `metric_spec`
accepts a registry `Metric`, any object with those attributes, or a mapping
with those keys (the form `load_sessions` keeps in `df.attrs["metrics"]`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from analysis.corrections import MetricDirection
from analysis.errors import AnalysisError
from experiments.metrics import MetricType, Rollup


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A metric as the analysis reads it.

    `margin` is the guardrail's non-inferiority margin, relative to the
    control's mean (0.05: the treatment may be at most 5% worse).
    """

    name: str
    type: MetricType = MetricType.CONTINUOUS
    unit: str = ""
    direction: MetricDirection = MetricDirection.HIGHER_IS_BETTER
    rollup: Rollup = Rollup.MEAN
    guardrail: bool = False
    margin: float | None = None

    @property
    def ratio(self) -> bool:
        """Mean over a session's events: analysed as sum over events / events (delta method)."""
        return self.rollup is Rollup.MEAN

    @property
    def proportion(self) -> bool:
        """A 0/1 value per session: analysed with the two-proportion test."""
        return self.type is MetricType.PROPORTION and not self.ratio

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": str(self.type),
            "unit": self.unit,
            "direction": str(self.direction),
            "rollup": str(self.rollup),
            "guardrail": self.guardrail,
            "margin": self.margin,
        }


def _field(source: Any, *names: str) -> Any:
    for name in names:
        if isinstance(source, Mapping) and name in source:
            return source[name]
        if not isinstance(source, Mapping) and hasattr(source, name):
            return getattr(source, name)
    return None


def _direction(value: Any) -> MetricDirection:
    text = str(getattr(value, "value", value) or "higher").lower()
    if text.startswith("lower"):
        return MetricDirection.LOWER_IS_BETTER
    if text.startswith("higher"):
        return MetricDirection.HIGHER_IS_BETTER
    raise AnalysisError(f"unknown metric direction {text!r}", context={"direction": text})


def _enum(kind: type[Rollup] | type[MetricType], value: Any, default: str, metric: str) -> Any:
    text = str(getattr(value, "value", value) or default).lower()
    try:
        return kind(text)
    except ValueError:
        raise AnalysisError(
            f"metric {metric!r}: unknown {kind.__name__} {text!r}",
            context={"metric": metric, "value": text},
        ) from None


def metric_spec(source: MetricSpec | Mapping[str, Any] | Any) -> MetricSpec:
    """Normalise a registry entry (object or mapping) into a `MetricSpec`."""
    if isinstance(source, MetricSpec):
        return source
    name = _field(source, "name", "key")
    if not isinstance(name, str) or not name:
        raise AnalysisError("a metric needs a non-empty name", context={"metric": repr(source)})
    margin = _field(source, "non_inferiority_margin", "margin")
    if margin is not None and (not math.isfinite(float(margin)) or float(margin) < 0):
        raise AnalysisError(
            f"metric {name!r}: the non-inferiority margin must be finite and >= 0",
            context={"metric": name, "margin": margin},
        )
    return MetricSpec(
        name=name,
        type=_enum(MetricType, _field(source, "type", "kind"), "continuous", name),
        unit=str(_field(source, "unit") or ""),
        direction=_direction(_field(source, "direction")),
        rollup=_enum(Rollup, _field(source, "rollup"), "mean", name),
        guardrail=bool(_field(source, "guardrail")),
        margin=None if margin is None else float(margin),
    )


def metric_specs(sources: Iterable[Any]) -> tuple[MetricSpec, ...]:
    """Normalise several entries; names must be unique."""
    specs = tuple(metric_spec(source) for source in sources)
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise AnalysisError("metric names must be unique", context={"metrics": names})
    return specs
