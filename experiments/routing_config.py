"""Loading the routing configuration: a flag set and the catalog that serves it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog, load_catalog
from .flags import CompiledFlagSet, FlagWarning, check_flags_against_catalog, load_flag_set


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Flags and catalog that were checked against each other."""

    flag_set: CompiledFlagSet
    catalog: Catalog
    warnings: tuple[FlagWarning, ...] = ()


def check_routing_config(flag_set: CompiledFlagSet, catalog: Catalog) -> RoutingConfig:
    """Raise `FlagValidationError` when the catalog cannot serve the flags."""
    definitions = {key: flag.definition for key, flag in flag_set.flags.items()}
    warnings = check_flags_against_catalog(definitions, catalog, source=flag_set.source)
    return RoutingConfig(flag_set, catalog, tuple(warnings))


def load_routing_config(flags_path: str | Path, catalog_path: str | Path) -> RoutingConfig:
    """Read, validate and cross-check both files; errors name the file, flag and problem."""
    return check_routing_config(load_flag_set(flags_path), load_catalog(catalog_path))
