"""The metric registry: which measurements an outcome event may carry, their
type, unit, direction, roll-up from turns to the session, guardrail status and
valid bounds.

The shipped registry is `defaults/metrics.yaml` (its header documents the
fields). `load_metric_registry(path)` reads it and, given a user file, merges
that file over it: a new name adds a metric, a known name overrides the fields
it sets. Every metric is checked; an error names the file, the metric and the
field. The outcome validation and the analysis both read this registry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml

from .errors import ErrorCode, ExperimentError
from .json_numbers import MAX_EXACT_INT

_E = TypeVar("_E", bound=StrEnum)
DEFAULT_METRICS_PATH = Path(__file__).resolve().parent / "defaults" / "metrics.yaml"
METRIC_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_NAME = re.compile(METRIC_NAME_PATTERN)
_FIELDS = frozenset(
    {"type", "unit", "direction", "rollup", "min", "max", "guardrail",
     "non_inferiority_margin", "description"}
)  # fmt: skip


class MetricType(StrEnum):
    """What a value is: a duration, an integer count, a yes/no, or any number."""

    LATENCY = "latency"
    COUNT = "count"
    PROPORTION = "proportion"
    CONTINUOUS = "continuous"


class Direction(StrEnum):
    """Which way is better."""

    LOWER = "lower"
    HIGHER = "higher"


class Rollup(StrEnum):
    """How the values of a session's events become the session's value."""

    MEAN = "mean"
    SUM = "sum"
    LAST = "last"
    MAX = "max"


class MetricRegistryError(ExperimentError):
    """A metric registry file is malformed; the message names file, metric and field."""

    code = ErrorCode.INVALID_INPUT


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric. `minimum`/`maximum` are inclusive bounds (None: unbounded);
    `non_inferiority_margin` is the largest acceptable harm of a guardrail,
    relative to the control's mean (0.05: at most 5% worse)."""

    name: str
    type: MetricType
    unit: str
    direction: Direction
    rollup: Rollup
    minimum: float | None = None
    maximum: float | None = None
    guardrail: bool = False
    non_inferiority_margin: float | None = None
    description: str = ""

    def value_of(self, value: object) -> float:
        """`value` as stored (a float; booleans as 1.0/0.0), or `ValueError`
        whose message is the problem (`7.0 is outside [1, 5]`)."""
        if isinstance(value, bool):
            if self.type is not MetricType.PROPORTION:
                raise ValueError(f"must be a number, got the boolean {_json(value)}")
            return 1.0 if value else 0.0
        if isinstance(value, int):
            if abs(value) > MAX_EXACT_INT:
                raise ValueError(f"{value} is too large (at most 2**53 in magnitude)")
            number = float(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"must be a finite number, got {value!r}")
            if self.type is MetricType.COUNT:
                raise ValueError(f"a count must be an integer, got {value!r}")
            number = value
        else:
            raise ValueError(f"must be a number, got {_type_name(value)}")
        return self._checked(number, value)

    def _checked(self, number: float, value: object) -> float:
        if self.type is MetricType.PROPORTION and number not in (0.0, 1.0):
            raise ValueError(f"a proportion must be true, false, 0 or 1, got {value!r}")
        low, high = self.minimum, self.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(f"{value!r} is outside {self.bounds_text()}")
        return number

    def bounds_text(self) -> str:
        """The valid range in interval notation: `[1, 5]`, `[0, inf)`."""
        low = "(-inf" if self.minimum is None else f"[{self.minimum:g}"
        high = "inf)" if self.maximum is None else f"{self.maximum:g}]"
        return f"{low}, {high}"


@dataclass(frozen=True, slots=True)
class MetricRegistry:
    """Every known metric by name, and the file(s) they came from."""

    metrics: Mapping[str, Metric]
    source: str = "<metrics>"

    def __contains__(self, name: object) -> bool:
        return name in self.metrics

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.metrics.values())

    def __len__(self) -> int:
        return len(self.metrics)

    def get(self, name: str) -> Metric | None:
        return self.metrics.get(name)

    def guardrails(self) -> tuple[Metric, ...]:
        return tuple(metric for metric in self if metric.guardrail)


@cache
def load_default_registry() -> MetricRegistry:
    """The shipped registry, read once."""
    return load_metric_registry()


def load_metric_registry(path: str | Path | None = None) -> MetricRegistry:
    """The shipped registry, with the user file at `path` merged over it."""
    defaults = _read(DEFAULT_METRICS_PATH)
    if path is None:
        return parse_metric_registry(defaults, source=str(DEFAULT_METRICS_PATH))
    user = _read(Path(path))
    merged = dict(defaults)
    for name, entry in user.items():
        base = defaults.get(name)
        merged[name] = (
            {**base, **entry} if isinstance(base, dict) and isinstance(entry, dict) else entry
        )
    return parse_metric_registry(merged, source=f"{DEFAULT_METRICS_PATH} + {path}")


def parse_metric_registry(entries: Mapping[str, Any], *, source: str) -> MetricRegistry:
    """Check every entry of a `metrics:` mapping and build the registry."""
    metrics = {name: parse_metric(name, entry, source=source) for name, entry in entries.items()}
    return MetricRegistry(MappingProxyType(metrics), source)


def parse_metric(name: object, entry: object, *, source: str) -> Metric:
    """One metric from its mapping; `MetricRegistryError` naming the field."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(source, str(name), "name", "must match [a-z][a-z0-9_]{0,63}")
    if not isinstance(entry, Mapping):
        raise _fail(source, name, "", f"must be a mapping, got {_type_name(entry)}")
    unknown = sorted(set(map(str, entry)) - _FIELDS)
    if unknown:
        raise _fail(source, name, unknown[0], f"unknown field; known: {sorted(_FIELDS)}")
    metric = Metric(
        name=name,
        type=_choice(MetricType, entry, "type", source, name),
        unit=_text(entry, "unit", source, name, required=True),
        direction=_choice(Direction, entry, "direction", source, name),
        rollup=_choice(Rollup, entry, "rollup", source, name),
        minimum=_number(entry, "min", source, name),
        maximum=_number(entry, "max", source, name),
        guardrail=_flag(entry, "guardrail", source, name),
        non_inferiority_margin=_number(entry, "non_inferiority_margin", source, name),
        description=_text(entry, "description", source, name, required=False),
    )
    _check_consistent(metric, source)
    return metric


def _check_consistent(metric: Metric, source: str) -> None:
    low, high = metric.minimum, metric.maximum
    if low is not None and high is not None and low > high:
        raise _fail(source, metric.name, "min", f"{low:g} is greater than max {high:g}")
    margin = metric.non_inferiority_margin
    if margin is not None and margin < 0:
        raise _fail(source, metric.name, "non_inferiority_margin", f"must be >= 0, got {margin:g}")
    if metric.type is MetricType.PROPORTION and (low is not None or high is not None):
        raise _fail(source, metric.name, "min", "a proportion is 0 or 1; it takes no bounds")
    if metric.type is MetricType.PROPORTION and metric.rollup is Rollup.SUM:
        raise _fail(source, metric.name, "rollup", "a proportion rolls up by mean, last or max")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MetricRegistryError(f"file {path}: cannot read the metric registry: {exc}") from exc
    if (
        not isinstance(data, dict)
        or set(data) != {"metrics"}
        or not isinstance(data["metrics"], dict)
    ):
        raise MetricRegistryError(
            f"file {path}: a metric registry is a mapping with one key, `metrics`, "
            "mapping each metric name to its fields",
            context={"source": str(path)},
        )
    return data["metrics"]


def _choice(kind: type[_E], entry: Mapping[str, Any], field: str, source: str, name: str) -> _E:
    value = entry.get(field)
    known = {member.value: member for member in kind}
    if not isinstance(value, str) or value not in known:
        raise _fail(source, name, field, f"must be one of {list(known)}, got {value!r}")
    return known[value]


def _text(entry: Mapping[str, Any], field: str, source: str, name: str, *, required: bool) -> str:
    value = entry.get(field, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise _fail(source, name, field, f"must be a non-empty string, got {value!r}")
    return value


def _number(entry: Mapping[str, Any], field: str, source: str, name: str) -> float | None:
    value = entry.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(source, name, field, f"must be a finite number, got {value!r}")
    return float(value)


def _flag(entry: Mapping[str, Any], field: str, source: str, name: str) -> bool:
    value = entry.get(field, False)
    if not isinstance(value, bool):
        raise _fail(source, name, field, f"must be true or false, got {value!r}")
    return value


def _fail(source: str, name: str, field: str, problem: str) -> MetricRegistryError:
    where = f"metric {name!r}" + (f", field {field!r}" if field else "")
    return MetricRegistryError(
        f"file {source}: {where}: {problem}",
        context={"source": source, "metric": name, "field": field, "problem": problem},
    )


def _type_name(value: object) -> str:
    return {str: "a string", type(None): "null", list: "an array", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _json(value: bool) -> str:
    return "true" if value else "false"
