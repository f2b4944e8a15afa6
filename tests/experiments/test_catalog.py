from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.catalog import ProviderKind, load_catalog, parse_catalog
from experiments.errors import CatalogError

SHIPPED = Path(__file__).resolve().parents[2] / "experiments" / "defaults" / "catalog.yaml"


@pytest.fixture(scope="module")
def shipped_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    return doc


def test_the_shipped_catalog_loads_with_its_regions_and_defaults() -> None:
    catalog = load_catalog(SHIPPED)
    assert catalog.regions == ("us", "eu", "ap")
    assert catalog.defaults[ProviderKind.STT] == "deepgram/nova-3"
    assert catalog.default_for(ProviderKind.S2S, "us") == "openai/gpt-realtime"


def test_a_region_default_replaces_a_global_default_unavailable_there() -> None:
    catalog = load_catalog(SHIPPED)
    assert not catalog.is_available("openai/gpt-realtime", "ap")
    assert catalog.default_for(ProviderKind.S2S, "ap") == "google/gemini-live"


def test_tenant_overrides_merge_over_the_catalog_config() -> None:
    catalog = load_catalog(SHIPPED)
    tts = catalog.resolve("elevenlabs/eleven_flash_v2_5", "acme")
    assert tts.config["voice_id"] == "acme-brand-voice"
    assert tts.config["output_format"] == "pcm_16000"
    assert catalog.resolve("elevenlabs/eleven_flash_v2_5", "other").config["voice_id"] == "default"


def _broken(doc: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "where", "problem"),
    [
        (("regions",), [], "regions", "non-empty list"),
        (("providers", "silero", "kind"), "ears", "providers.silero.kind", "unknown kind"),
        (("providers", "silero", "regions"), ["mars"], "providers.silero.regions", "mars"),
        (("defaults", "stt"), "nobody/none", "defaults.stt", "unknown provider"),
        (("defaults", "stt"), "silero", "defaults.stt", "is a vad provider"),
        (("region_defaults",), {}, "defaults.s2s", "not available in region 'ap'"),
        (("tenants", "acme", "voices"), {}, "tenants.acme", "unknown field"),
    ],
)
def test_a_broken_catalog_names_the_path_and_the_problem(
    shipped_doc: dict[str, Any],
    path: tuple[str, ...],
    value: object,
    where: str,
    problem: str,
) -> None:
    doc = _broken(shipped_doc, path, value)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(doc, source="edited.yaml")
    assert caught.value.context["path"] == where
    assert problem in caught.value.message
    assert "edited.yaml" in caught.value.message


def test_an_unreadable_catalog_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text("regions: [us\n")
    with pytest.raises(CatalogError, match=r"catalog .*catalog\.yaml: not valid"):
        load_catalog(bad)
