"""GET /metrics and the metrics the API's requests move, on a real Redis (one process:
the default registry; the multiprocess mode is in test_metrics_workers.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_samples import increments, sample, samples

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

SESSION = {"session_id": "call-1", "tenant_id": "acme", "region": "eu"}
TURN = {"turn": 1, "metrics": {"e2e_latency_ms": 905}}
LATENCY = "voxroute_http_request_duration_seconds_count"


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def created(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await client.post("/v1/sessions", json={**SESSION, **changes})
    assert response.status_code == 201
    document: dict[str, Any] = response.json()
    return document


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await created(client)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = families(response.text)
    for name in ("voxroute_http_request_duration_seconds", "voxroute_sessions_created"):
        assert name in found


async def test_the_openapi_document_gives_metrics_as_text_plain(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    content = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]


BATCH = {"events": [{"session_id": "call-404", **TURN}]}


@pytest.mark.parametrize(
    ("request_line", "body", "route", "status"),
    [
        ("POST /v1/sessions", SESSION, "/v1/sessions", "201"),
        ("GET /v1/sessions/call-404", None, "/v1/sessions/{session_id}", "404"),
        ("POST /v1/sessions/call-404/outcomes", TURN, "/v1/sessions/{session_id}/outcomes", "404"),
        ("POST /v1/outcomes", BATCH, "/v1/outcomes", "404"),
        ("GET /nowhere/call-404", None, "unmatched", "404"),
        ("DELETE /v1/sessions", None, "/v1/sessions", "405"),
    ],
)
async def test_request_latency_is_labelled_by_route_template_and_status(
    client: httpx.AsyncClient, request_line: str, body: Any, route: str, status: str
) -> None:
    method, path = request_line.split()
    labels = {"method": method, "route": route, "status": status}
    before = sample(LATENCY, **labels)
    response = await client.request(method, path, json=body)
    assert str(response.status_code) == status
    assert sample(LATENCY, **labels) == before + 1


async def test_a_raw_path_is_never_a_label(client: httpx.AsyncClient) -> None:
    await client.get("/v1/sessions/call-raw-label")
    assert "call-raw-label" not in (await client.get("/metrics")).text


async def test_an_unknown_method_is_labelled_other(client: httpx.AsyncClient) -> None:
    labels = {"method": "other", "route": "/v1/sessions", "status": "405"}
    before = sample(LATENCY, **labels)
    await client.request("BREW", "/v1/sessions")
    assert sample(LATENCY, **labels) == before + 1


async def test_a_created_session_is_counted_by_region_and_mode(
    client: httpx.AsyncClient,
) -> None:
    before = sample("voxroute_sessions_created_total", region="eu", mode="pipeline")
    await created(client)
    await client.post("/v1/sessions", json=SESSION)  # the same session again: 200, not counted
    assert sample("voxroute_sessions_created_total", region="eu", mode="pipeline") == before + 1


async def test_a_created_session_counts_the_provider_of_each_component(
    client: httpx.AsyncClient,
) -> None:
    before = samples("voxroute_session_providers_total")
    route = (await created(client))["route"]
    grown = increments(before, samples("voxroute_session_providers_total"))
    parts = ("stt", "tts", "vad", "turn_detection")
    expected = {
        (("component", part), ("provider", route[part]["id"]), ("region", "eu")): 1.0
        for part in parts
    }
    assert grown == expected


async def test_each_routed_session_is_one_flag_evaluation_observation(
    client: httpx.AsyncClient,
) -> None:
    before = sample("voxroute_flag_evaluation_seconds_count")
    await created(client)
    await created(client, session_id="call-2")
    assert sample("voxroute_flag_evaluation_seconds_count") == before + 2


async def test_stream_writes_are_timed_and_their_batches_sized(client: httpx.AsyncClient) -> None:
    writes = sample("voxroute_stream_write_seconds_count", log="sessions")
    batched = sample("voxroute_group_commit_batch_size_sum", log="sessions")
    await created(client)
    assert sample("voxroute_stream_write_seconds_count", log="sessions") == writes + 1
    assert sample("voxroute_group_commit_batch_size_sum", log="sessions") == batched + 1


@pytest.mark.parametrize(
    ("mode", "events", "accepted", "rejected"),
    [
        (
            "per_event",
            [{"session_id": "call-1", **TURN}, {"session_id": "call-404", **TURN}],
            {"appended": 1},
            {"session_not_found": 1},
        ),
        (
            "all_or_nothing",
            [{"session_id": "call-1", **TURN}, {"session_id": "call-1", "metrics": {"mos": 9}}],
            {},
            {"invalid_input": 1, "batch_refused": 1},
        ),
        (
            "per_event",
            [{"session_id": "call-1", "event_id": "e", **TURN}] * 2,
            {"appended": 1, "duplicate": 1},
            {},
        ),
    ],
)
async def test_outcome_events_are_counted_as_accepted_or_rejected_by_reason(
    client: httpx.AsyncClient,
    mode: str,
    events: list[dict[str, Any]],
    accepted: dict[str, int],
    rejected: dict[str, int],
) -> None:
    await created(client)
    statuses = ("appended", "duplicate", "spooled")
    reasons = ("session_not_found", "invalid_input", "batch_refused", "conflict")
    before_accepted = {
        s: sample("voxroute_outcome_events_accepted_total", status=s) for s in statuses
    }
    before_rejected = {
        r: sample("voxroute_outcome_events_rejected_total", reason=r) for r in reasons
    }
    await client.post("/v1/outcomes", json={"events": events, "mode": mode})
    for status in statuses:
        now = sample("voxroute_outcome_events_accepted_total", status=status)
        assert now - before_accepted[status] == accepted.get(status, 0), status
    for reason in reasons:
        now = sample("voxroute_outcome_events_rejected_total", reason=reason)
        assert now - before_rejected[reason] == rejected.get(reason, 0), reason
