"""Which flags are experiments: flags whose targeting has at least one
`fractional` split, with their cohorts (the split's variants) and weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .flags import CompiledFlagSet
from .flags.patch import find_splits


@dataclass(frozen=True, slots=True)
class SplitView:
    split_id: str
    path: str
    bucket_unit: str
    weights: tuple[tuple[str, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "split_id": self.split_id,
            "path": self.path,
            "bucket_unit": self.bucket_unit,
            "weights": dict(self.weights),
        }


@dataclass(frozen=True, slots=True)
class ExperimentView:
    """One flag with a split: its state, version, control and cohorts."""

    flag_key: str
    state: str
    version: str
    control: str | None
    cohorts: tuple[str, ...]
    splits: tuple[SplitView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "flag_key": self.flag_key,
            "state": self.state,
            "version": self.version,
            "control": self.control,
            "cohorts": list(self.cohorts),
            "splits": [split.to_dict() for split in self.splits],
        }


def list_experiments(flag_set: CompiledFlagSet) -> list[ExperimentView]:
    """Every flag of `flag_set` with a split, in key order."""
    found = []
    for key in sorted(flag_set.flags):
        definition = flag_set.flags[key].definition
        splits = tuple(
            SplitView(s.split_id, s.path, s.bucket_unit, s.weights)
            for s in find_splits(key, definition.targeting)
        )
        if not splits:
            continue
        cohorts = tuple(dict.fromkeys(v for split in splits for v, _ in split.weights))
        control = definition.metadata.get("control")
        found.append(
            ExperimentView(
                key,
                definition.state,
                definition.version,
                str(control) if control is not None else (cohorts[0] if cohorts else None),
                cohorts,
                splits,
            )
        )
    return found
