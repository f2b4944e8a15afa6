"""POST/GET /v1/sessions through the HTTP API on a real Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from experiments.eventlog import KeyLayout
from experiments.events import AssignmentEvent

BODY = {
    "session_id": "call-8812",
    "tenant_id": "acme",
    "region": "eu",
    "features": {"s2s": False},
    "attributes": {"plan": "pro"},
}


def _body(**changes: Any) -> dict[str, Any]:
    return {**BODY, **changes}


def _stream_entries(redis_url: str, prefix: str) -> list[AssignmentEvent]:
    keys = KeyLayout(prefix=prefix)
    with redis.Redis.from_url(redis_url) as conn:
        entries = []
        for shard in range(keys.shards):
            entries += conn.xrange(keys.assignment_stream(shard))
    return [AssignmentEvent.decode(fields) for _, fields in entries]


async def test_a_new_session_gets_a_pipeline_route_and_201(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sessions", json=BODY)
    assert response.status_code == 201
    doc = response.json()
    assert doc["route"]["mode"] == "pipeline"
    assert doc["route"]["s2s"] is None
    assert doc["route"]["tts"]["config"]["voice_id"] == "acme-brand-voice"
    flags = [a["flag_key"] for a in doc["assignments"]]
    assert flags == ["voice-mode", "stt-provider", "tts-provider", "vad-provider", "turn-detector"]
    assert doc["fallbacks"] == []


async def test_the_stt_split_is_reported_with_its_split(client: httpx.AsyncClient) -> None:
    doc = (await client.post("/v1/sessions", json=BODY)).json()
    (stt,) = [a for a in doc["assignments"] if a["flag_key"] == "stt-provider"]
    assert stt["reason"] == "SPLIT"
    assert stt["split"]["weights"] == {"deepgram-nova-3": 50, "assemblyai-universal": 50}
    assert stt["split"]["bucket_unit"] == "targetingKey"
    assert doc["route"]["stt"]["id"] == stt["value"]


async def test_get_returns_the_same_document(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/sessions", json=BODY)
    fetched = await client.get("/v1/sessions/call-8812")
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


async def test_a_repost_returns_the_pinned_route_and_records_nothing(
    client: httpx.AsyncClient, redis_url: str, prefix: str
) -> None:
    first = await client.post("/v1/sessions", json=BODY)
    again = await client.post("/v1/sessions", json=_body(features={"s2s": True}))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(_stream_entries(redis_url, prefix)) == 1


async def test_one_entry_per_session_with_one_assignment_per_evaluated_flag(
    client: httpx.AsyncClient, redis_url: str, prefix: str
) -> None:
    for i in range(20):
        await client.post(
            "/v1/sessions", json=_body(session_id=f"s-{i}", features={"s2s": i % 2 == 0})
        )
    events = _stream_entries(redis_url, prefix)
    assert sorted(e.session_id for e in events) == sorted(f"s-{i}" for i in range(20))
    for event in events:
        expected = 4 if int(event.session_id[2:]) % 2 == 0 else 5
        assert len(event.assignments) == expected


async def test_the_stream_entry_carries_the_sessions_features_and_attributes(
    client: httpx.AsyncClient, redis_url: str, prefix: str
) -> None:
    await client.post("/v1/sessions", json=_body(attributes={"plan": "pro", "seats": 12}))
    (event,) = _stream_entries(redis_url, prefix)
    assert event.features == {"s2s": False}
    assert event.attributes == {"plan": "pro", "seats": 12}
    assert all(a.fallback is None for a in event.assignments)  # eu: every flag's value is used


async def test_an_s2s_variant_unavailable_in_ap_is_recorded_as_a_fallback_on_its_assignment(
    client: httpx.AsyncClient, redis_url: str, prefix: str
) -> None:
    for i in range(30):
        body = _body(session_id=f"ap-{i}", region="ap", features={"s2s": True})
        doc = (await client.post("/v1/sessions", json=body)).json()
        assert doc["route"]["s2s"]["id"] == "google/gemini-live"
    fell_back = 0
    for event in _stream_entries(redis_url, prefix):
        (s2s,) = [a for a in event.assignments if a.flag_key == "s2s-provider"]
        assert s2s.reason == "SPLIT"
        if s2s.value == "openai/gpt-realtime":
            assert (s2s.fallback, s2s.used) == ("unavailable_in_region", "google/gemini-live")
            fell_back += 1
        else:
            assert (s2s.fallback, s2s.used) == (None, None)
        others = [a for a in event.assignments if a.flag_key != "s2s-provider"]
        assert all(a.fallback is None for a in others)
    assert 0 < fell_back < 30  # the split served both variants; only openai fell back


async def test_another_tenant_reusing_a_session_id_is_a_conflict(client: httpx.AsyncClient) -> None:
    await client.post("/v1/sessions", json=BODY)
    response = await client.post("/v1/sessions", json=_body(tenant_id="globex"))
    assert response.status_code == 409
    assert "another tenant" in response.json()["error"]["message"]


async def test_an_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sessions/nobody")
    assert response.status_code == 404
    assert "nobody" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_body(session_id=""), "body.session_id"),
        (_body(session_id="x" * 129), "body.session_id"),
        (_body(session_id="a\u0007b"), "body.session_id"),
        (_body(tenant_id="\n"), "body.tenant_id"),
        (_body(region="mars"), "region"),
        (_body(features={"s2s": "yes"}), "body.features.s2s"),
        (_body(features={"s2s": 1}), "body.features.s2s"),
        (_body(colour="blue"), "body.colour"),
        ({k: v for k, v in BODY.items() if k != "tenant_id"}, "body.tenant_id"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, redis_url: str, prefix: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/sessions", json=body)
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]
    with redis.Redis.from_url(redis_url) as conn:
        assert list(conn.scan_iter(match=f"{prefix}:*")) == []


async def test_an_integer_attribute_beyond_2_53_is_taken_as_a_float(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/sessions", json=_body(attributes={"seats": 2**64}))
    assert response.status_code == 201, response.text
    assert response.json()["attributes"] == {"seats": float(2**64)}


async def test_a_body_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    big = _body(attributes={f"k{i}": "v" * 200 for i in range(400)})
    response = await client.post("/v1/sessions", json=big)
    assert response.status_code == 413


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["redis"]["ok"] is True


async def test_the_openapi_document_describes_post_sessions(client: httpx.AsyncClient) -> None:
    # POST /v1/sessions is served by a plain route ahead of the routers (the hot
    # path); the APIRoute that the document comes from must still describe it.
    operation = (await client.get("/openapi.json")).json()["paths"]["/v1/sessions"]["post"]
    assert operation["summary"] == "Route a new session and pin its providers"
    assert "Idempotent" in operation["description"]
    statuses = {"200", "201", "401", "403", "409", "413", "415", "422", "429", "503"}
    assert set(operation["responses"]) == statuses
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"session_id", "region"}  # tenant_id: a tenant key's


async def test_other_methods_on_the_sessions_path_are_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sessions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
