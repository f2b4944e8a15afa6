"""Flag-store fixtures: the shipped flags and catalog, and a manager on the in-memory store."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from experiments.catalog import Catalog, load_catalog
from experiments.flag_store import FlagManager, InMemoryFlagStore
from experiments.flags import DEFAULT_FLAGS_PATH

CATALOG_PATH = DEFAULT_FLAGS_PATH.parent / "catalog.yaml"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(CATALOG_PATH)


@pytest.fixture
def shipped() -> dict[str, Any]:
    """The shipped flag set, decoded (a fresh copy per test)."""
    data: dict[str, Any] = json.loads(DEFAULT_FLAGS_PATH.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


@pytest.fixture
async def manager(catalog: Catalog, shipped: dict[str, Any]) -> FlagManager:
    """A manager on an in-memory store seeded with the shipped flags."""
    flags = FlagManager(InMemoryFlagStore(), catalog, clock=lambda: 1_700_000_000.0)
    assert await flags.seed(shipped, source="flags.json")
    return flags
