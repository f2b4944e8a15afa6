"""Reading voxroute's Prometheus metrics in tests (this process's default registry)."""

from __future__ import annotations

from prometheus_client import REGISTRY

Labels = tuple[tuple[str, str], ...]


def sample(name: str, **labels: str) -> float:
    """The value of one sample (`voxroute_..._total`, `..._count`, `..._sum`); 0 if absent."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples(name: str) -> dict[Labels, float]:
    """Every sample called `name`, by its sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name == name
    }


def increments(before: dict[Labels, float], after: dict[Labels, float]) -> dict[Labels, float]:
    """The samples that grew from `before` to `after`, by how much."""
    grown = {labels: value - before.get(labels, 0.0) for labels, value in after.items()}
    return {labels: value for labels, value in grown.items() if value}
