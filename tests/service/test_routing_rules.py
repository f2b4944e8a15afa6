"""The shipped flags' routing rules, through the HTTP API."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from service.settings import DEFAULTS_DIR


async def _route(
    client: httpx.AsyncClient, session: str, tenant: str, region: str, s2s: bool = False
) -> dict[str, Any]:
    body = {"session_id": session, "tenant_id": tenant, "region": region, "features": {"s2s": s2s}}
    response = await client.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc


def _assignment(doc: dict[str, Any], flag_key: str) -> dict[str, Any]:
    (found,) = [a for a in doc["assignments"] if a["flag_key"] == flag_key]
    return found


async def test_features_s2s_selects_s2s_mode(client: httpx.AsyncClient) -> None:
    doc = await _route(client, "s-1", "acme", "us", s2s=True)
    assert doc["route"]["mode"] == "s2s"
    assert doc["route"]["s2s"]["id"] in {"openai/gpt-realtime", "google/gemini-live"}
    assert (doc["route"]["stt"], doc["route"]["tts"]) == (None, None)


async def test_globex_always_gets_openai_transcribe(client: httpx.AsyncClient) -> None:
    for i in range(10):
        doc = await _route(client, f"g-{i}", "globex", ["us", "eu", "ap"][i % 3])
        assert doc["route"]["stt"]["id"] == "openai/gpt-4o-transcribe"
        assert _assignment(doc, "stt-provider")["reason"] == "TARGETING_MATCH"
        assert doc["route"]["stt"]["config"]["prompt"].startswith("Globex")


async def test_stt_outside_the_split_regions_is_the_flag_default(client: httpx.AsyncClient) -> None:
    doc = await _route(client, "ap-1", "acme", "ap")
    stt = _assignment(doc, "stt-provider")
    assert (stt["variant"], stt["reason"]) == ("deepgram-nova-3", "DEFAULT")
    assert "split" not in stt


async def test_tts_is_split_per_tenant_in_the_eu(client: httpx.AsyncClient) -> None:
    variants = {
        _assignment(await _route(client, f"t-{i}", "tenant-7", "eu"), "tts-provider")["variant"]
        for i in range(8)
    }
    assert len(variants) == 1
    doc = await _route(client, "t-x", "tenant-7", "eu")
    split = _assignment(doc, "tts-provider")["split"]
    assert (split["bucket_unit"], split["bucket_key"]) == ("tenant_id", "tts-providertenant-7")


async def test_tts_outside_the_eu_is_elevenlabs(client: httpx.AsyncClient) -> None:
    doc = await _route(client, "u-1", "tenant-7", "us")
    assert doc["route"]["tts"]["id"] == "elevenlabs/eleven_flash_v2_5"


async def test_s2s_in_ap_falls_back_from_openai_to_the_regional_default(
    client: httpx.AsyncClient,
) -> None:
    reasons = Counter()
    for i in range(40):
        doc = await _route(client, f"ap-s2s-{i}", "acme", "ap", s2s=True)
        assert doc["route"]["s2s"]["id"] == "google/gemini-live"
        for fallback in doc["fallbacks"]:
            reasons[(fallback["part"], fallback["reason"], fallback["requested"])] += 1
    assert reasons.keys() == {("s2s", "unavailable_in_region", "openai/gpt-realtime")}


@pytest.fixture(scope="module")
def flagd_core() -> FlagdCore:
    core = FlagdCore()
    core.set_flags((DEFAULTS_DIR / "flags.json").read_text())
    return core


async def test_stt_split_matches_flagd_core_session_by_session(
    client: httpx.AsyncClient, flagd_core: FlagdCore
) -> None:
    counts: Counter[str] = Counter()
    for i in range(200):
        session = f"call-{i:04d}"
        doc = await _route(client, session, "acme", "us")
        attrs = {"tenant_id": "acme", "region": "us", "features": {"s2s": False}, "attributes": {}}
        expected = flagd_core.resolve_string_value(
            "stt-provider", "", EvaluationContext(session, attrs)
        )
        stt = _assignment(doc, "stt-provider")
        assert stt["variant"] == expected.variant
        counts[stt["variant"]] += 1
    assert 70 < counts["deepgram-nova-3"] < 130
