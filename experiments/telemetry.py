"""Process-local counters, rendered in the Prometheus text format.

Deliberately tiny: the hot path increments a dict entry; `/metrics` renders it.
"""

from __future__ import annotations

from collections import Counter as _Tally
from collections.abc import Iterator


class Counter:
    """A monotonically increasing count per label set."""

    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...]) -> None:
        self.name = name
        self.help_text = help_text
        self.label_names = label_names
        self._values: _Tally[tuple[str, ...]] = _Tally()

    def inc(self, *labels: str, amount: int = 1) -> None:
        if len(labels) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {labels}")
        self._values[labels] += amount

    def value(self, *labels: str) -> int:
        return self._values[labels]

    def total(self) -> int:
        return sum(self._values.values())

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help_text}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self._values.items()):
            pairs = ",".join(
                f'{name}="{_escape(label)}"'
                for name, label in zip(self.label_names, labels, strict=True)
            )
            yield f"{self.name}{{{pairs}}} {value}"


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


ROUTE_FALLBACKS = Counter(
    "voxroute_route_fallbacks_total",
    "Route parts that fell back to the catalog default, by part, flag and reason.",
    ("part", "flag", "reason"),
)
SESSIONS_CREATED = Counter(
    "voxroute_sessions_created_total", "Sessions created, by mode.", ("mode",)
)

AUTH_FAILURES = Counter(
    "voxroute_auth_failures_total",
    "Requests refused by authentication or authorization, by reason.",
    ("reason",),
)

ALL_COUNTERS = (ROUTE_FALLBACKS, SESSIONS_CREATED, AUTH_FAILURES)


def render_prometheus(counters: tuple[Counter, ...] = ALL_COUNTERS) -> str:
    return "\n".join(line for counter in counters for line in counter.render()) + "\n"
