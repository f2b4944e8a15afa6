"""JSON-ready views of stored flags, for the HTTP API and the CLI."""

from __future__ import annotations

from typing import Any

from ..errors import FlagValidationError
from ..flags import FlagSetDefinition, parse_flag_set
from ..flags.patch import SplitSummary, find_splits
from .documents import StoredFlag, StoredFlagSet


def _definition(stored: StoredFlagSet) -> FlagSetDefinition | None:
    try:
        return parse_flag_set(stored.draft.flagd(), strict=False)
    except FlagValidationError:
        return None


def _splits(key: str, definition: FlagSetDefinition | None, stored: StoredFlagSet) -> list[Any]:
    if definition is not None and key in definition.flags:
        found = find_splits(key, definition.flags[key].targeting)
    else:
        found = find_splits(key, stored.flags[key].get("targeting"))
    return [split_view(split) for split in found]


def split_view(split: SplitSummary) -> dict[str, Any]:
    return {
        "id": split.split_id,
        "path": split.path,
        "bucket_unit": split.bucket_unit,
        "weights": split.weights_dict(),
        "computed": split.computed,
    }


def flag_view(stored: StoredFlagSet, flag: StoredFlag) -> dict[str, Any]:
    """One flag: key, version, flag-set version, flagd document and its splits."""
    return {
        "key": flag.key,
        "version": flag.version,
        "set_version": stored.version,
        "definition": dict(flag.document),
        "splits": _splits(flag.key, _definition(stored), stored),
    }


def list_view(stored: StoredFlagSet, store_name: str) -> dict[str, Any]:
    """Every flag in short: version, state, default variant, variants, splits."""
    definition = _definition(stored)
    flags = [
        {
            "key": key,
            "version": stored.flag_version(key),
            "state": document.get("state"),
            "defaultVariant": document.get("defaultVariant"),
            "variants": document.get("variants"),
            "splits": _splits(key, definition, stored),
        }
        for key, document in stored.flags.items()
    ]
    return {"set_version": stored.version, "store": store_name, "flags": flags}
