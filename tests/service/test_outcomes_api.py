"""The outcome endpoints through the HTTP API on a real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi.routing import APIRoute

from experiments.eventlog import KeyLayout
from experiments.events import OutcomeEvent, OutcomeKind
from service.main import create_app
from service.settings import Settings

SESSION = {"session_id": "call-8812", "tenant_id": "acme", "region": "eu"}
TURN = {
    "event_id": "6f1c",
    "turn": 3,
    "metrics": {
        "stt_ttfb_ms": 182.0,
        "llm_ttft_ms": 410.5,
        "tts_ttfb_ms": 121,
        "e2e_latency_ms": 905,
    },
}
URL = "/v1/sessions/call-8812/outcomes"


@pytest.fixture
async def session(client: httpx.AsyncClient) -> str:
    for session_id in ("call-8812", "call-2"):
        created = await client.post("/v1/sessions", json={**SESSION, "session_id": session_id})
        assert created.status_code == 201
    return "call-8812"


def stored(redis_url: str, prefix: str) -> list[OutcomeEvent]:
    keys = KeyLayout(prefix=prefix)
    with redis.Redis.from_url(redis_url) as conn:
        return [OutcomeEvent.decode(fields) for _, fields in conn.xrange(keys.outcome_stream(0))]


def outcome_keys(redis_url: str, prefix: str) -> list[bytes]:
    with redis.Redis.from_url(redis_url) as conn:
        keys = conn.scan_iter(match=f"{prefix}:*")
        return [k for k in keys if k.endswith(b":outcomes") or b":seen:" in k]


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_a_turn_outcome_is_accepted_and_stored(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    response = await client.post(URL, json=TURN)
    assert response.status_code == 202
    assert response.json() == {"event_id": "6f1c", "status": "appended"}
    [event] = stored(redis_url, prefix)
    assert (event.session_id, event.tenant_id, event.turn) == ("call-8812", "acme", 3)
    assert event.kind is OutcomeKind.TURN
    assert dict(event.metrics)["tts_ttfb_ms"] == 121.0


async def test_the_same_request_posted_three_times_is_stored_once(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    statuses = [(await client.post(URL, json=TURN)).json()["status"] for _ in range(3)]
    assert statuses == ["appended", "duplicate", "duplicate"]
    assert len(stored(redis_url, prefix)) == 1


async def test_concurrent_retries_are_stored_once(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    responses = await asyncio.gather(*(client.post(URL, json=TURN) for _ in range(20)))
    statuses = Counter(r.json()["status"] for r in responses)
    assert statuses == {"appended": 1, "duplicate": 19}
    assert len(stored(redis_url, prefix)) == 1


async def test_without_an_event_id_one_is_generated(
    client: httpx.AsyncClient, session: str
) -> None:
    body = {"metrics": {"mos": 4.2}}
    first, second = [(await client.post(URL, json=body)).json() for _ in range(2)]
    assert first["event_id"] != second["event_id"]
    assert len(first["event_id"]) == 32


async def test_an_unknown_session_is_404_and_nothing_is_written(
    client: httpx.AsyncClient, redis_url: str, prefix: str
) -> None:
    response = await client.post("/v1/sessions/nobody/outcomes", json=TURN)
    assert response.status_code == 404
    assert error_of(response)["code"] == "session_not_found"
    assert error_of(response)["message"] == (
        "session_id: session 'nobody' not found (unknown, or expired)"
    )
    assert outcome_keys(redis_url, prefix) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"metrics": {"mos": 7.0}}', "metrics.mos: 7.0 is outside [1, 5]"),
        (b'{"metrics": {"mos": NaN}}', "metrics.mos: must be a finite number, got nan"),
        (b'{"metrics": {"e2e_latency_ms": Infinity}}', "must be a finite number, got inf"),
        (b'{"metrics": {"e2e_latency_ms": -5}}', "metrics.e2e_latency_ms: -5 is outside [0, "),
        (b'{"metrics": {"interruptions": 1.5}}', "metrics.interruptions: a count must be an int"),
        (b'{"metrics": {"e2e_latency_ms": true}}', "e2e_latency_ms: must be a number, got the b"),
        (b'{"metrics": {"mos": "4"}}', "metrics.mos: must be a number, got a string"),
        (b'{"metrics": {"moss": 4}}', "metrics.moss: unknown metric 'moss' (did you mean 'mos'?)"),
        (b'{"metrics": {}}', "metrics: must name at least one metric"),
        (b'{"metrics": {"mos": 4}, "turn": -1}', "turn: must be an integer from 0 to"),
        (b'{"metrics": {"mos": 4}, "turn": "2"}', "turn: must be an integer from 0 to"),
        (b'{"metrics": {"mos": 4}, "event_id": ""}', "event_id: must not be empty"),
        (b'{"metrics": {"mos": 4}, "event_id": "a\\u0000"}', "event_id: must not contain control"),
        (b'{"metrics": {"mos": 4}, "colour": 1}', "body.colour: Extra inputs are not permitted"),
        (b'{"turn": 1}', "body.metrics: Field required"),
    ],
)
@pytest.mark.usefixtures("session")
async def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, redis_url: str, prefix: str, content: bytes, message: str
) -> None:
    headers = {"content-type": "application/json"}
    response = await client.post(URL, content=content, headers=headers)
    assert response.status_code == 422
    assert message in error_of(response)["message"]
    assert outcome_keys(redis_url, prefix) == []


async def test_another_tenants_session_is_409_and_nothing_is_written(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    response = await client.post(URL, json={**TURN, "tenant_id": "globex"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert "another tenant than 'globex'" in error_of(response)["message"]
    assert outcome_keys(redis_url, prefix) == []
    assert (await client.post(URL, json={**TURN, "tenant_id": "acme"})).status_code == 202


async def test_end_records_one_end_event(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    body = {"metrics": {"duration_s": 184.2, "cost_usd": 0.031}}
    first = await client.post("/v1/sessions/call-8812/end", json=body)
    again = await client.post("/v1/sessions/call-8812/end", json=body)
    assert first.status_code == again.status_code == 202
    assert first.json() == {"event_id": "end", "status": "appended"}
    assert again.json()["status"] == "duplicate"
    [event] = stored(redis_url, prefix)
    assert (event.kind, event.turn) == (OutcomeKind.END, None)
    assert dict(event.metrics) == {"duration_s": 184.2, "cost_usd": 0.031}


async def test_end_refuses_a_turn(client: httpx.AsyncClient, session: str) -> None:
    response = await client.post("/v1/sessions/call-8812/end", json={"turn": 2, "metrics": {}})
    assert response.status_code == 422
    assert "body.turn" in error_of(response)["message"]


def batch_event(session_id: str, i: int, **metrics: Any) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "event_id": f"e-{i}",
        "turn": i,
        "metrics": metrics or {"task_success": True, "mos": 4.2, "wer": 0.07, "interruptions": 2},
    }


async def test_a_valid_batch_is_stored_with_per_event_results(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    events = [batch_event("call-8812", 0), batch_event("call-2", 1), batch_event("call-8812", 0)]
    response = await client.post("/v1/outcomes", json={"events": events})
    assert response.status_code == 202
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["appended", "appended", "duplicate"]
    assert body["counts"] == {"appended": 2, "duplicate": 1, "spooled": 0, "rejected": 0}
    assert body["results"][1] == {
        "index": 1, "session_id": "call-2", "event_id": "e-1", "status": "appended", "errors": [],
    }  # fmt: skip
    assert len(stored(redis_url, prefix)) == 2


async def test_an_all_or_nothing_batch_with_a_bad_event_writes_nothing(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    events = [batch_event("call-8812", i) for i in range(5)]
    events[3]["metrics"]["mos"] = 7.0
    response = await client.post("/v1/outcomes", json={"events": events})
    assert response.status_code == 422
    error = error_of(response)
    assert error["message"] == "events[3].metrics.mos: 7.0 is outside [1, 5]"
    [detail] = error["context"]["errors"]
    assert (detail["index"], detail["event_id"], detail["session_id"]) == (3, "e-3", "call-8812")
    assert outcome_keys(redis_url, prefix) == []


async def test_an_all_or_nothing_batch_with_an_unknown_session_is_404(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    events = [batch_event("call-8812", 0), batch_event("nobody", 1)]
    response = await client.post("/v1/outcomes", json={"events": events})
    assert response.status_code == 404
    assert error_of(response)["message"].startswith("events[1].session_id: session 'nobody'")
    assert outcome_keys(redis_url, prefix) == []


async def test_a_per_event_batch_stores_the_valid_events(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    events = [
        batch_event("call-8812", 0),
        batch_event("call-8812", 1, mos=7.0),
        batch_event("nobody", 2),
        batch_event("call-2", 3),
    ]
    response = await client.post("/v1/outcomes", json={"events": events, "mode": "per_event"})
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["appended", "rejected", "rejected", "appended"]
    assert results[1]["errors"] == [
        {
            "code": "invalid_input",
            "field": "events[1].metrics.mos",
            "message": "events[1].metrics.mos: 7.0 is outside [1, 5]",
        }
    ]
    assert results[2]["errors"][0]["code"] == "session_not_found"
    assert sorted(e.event_id for e in stored(redis_url, prefix)) == ["e-0", "e-3"]


async def test_a_batch_names_the_field_of_each_bad_event(
    client: httpx.AsyncClient, session: str
) -> None:
    events = [batch_event("call-8812", i, e2e_latency_ms=-1) for i in range(2)]
    response = await client.post("/v1/outcomes", json={"events": events})
    assert error_of(response)["message"] == (
        "events[0].metrics.e2e_latency_ms: -1 is outside [0, 600000]; "
        "events[1].metrics.e2e_latency_ms: -1 is outside [0, 600000]"
    )


async def test_a_thousand_events_over_64_kib_are_accepted(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    events = [batch_event("call-8812", i) for i in range(1000)]
    content = orjson.dumps({"events": events})
    assert len(content) > 64 * 1024
    response = await client.post(
        "/v1/outcomes", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 202
    assert response.json()["counts"]["appended"] == 1000
    assert len(stored(redis_url, prefix)) == 1000


async def test_more_than_a_thousand_events_are_422(
    client: httpx.AsyncClient, session: str, redis_url: str, prefix: str
) -> None:
    events = [batch_event("call-8812", i, mos=4) for i in range(1001)]
    response = await client.post("/v1/outcomes", json={"events": events})
    assert response.status_code == 422
    assert error_of(response)["message"] == "events: at most 1000 events per request, got 1001"
    assert outcome_keys(redis_url, prefix) == []


async def test_body_limits_are_per_path(client: httpx.AsyncClient, session: str) -> None:
    padding = "x" * (64 * 1024)
    single = await client.post(URL, json={**TURN, "event_id": padding})
    assert single.status_code == 413
    huge = {"events": [batch_event("call-8812", 0)], "pad": "x" * (1024 * 1024)}
    assert (await client.post("/v1/outcomes", json=huge)).status_code == 413


async def test_a_bad_mode_or_an_empty_batch_is_422(client: httpx.AsyncClient) -> None:
    bad_mode = await client.post("/v1/outcomes", json={"events": [], "mode": "some"})
    assert bad_mode.status_code == 422
    assert "body.mode" in error_of(bad_mode)["message"]
    empty = await client.post("/v1/outcomes", json={"events": []})
    assert empty.status_code == 422
    assert error_of(empty)["message"] == "events: must hold at least one event"


async def test_the_openapi_document_describes_the_endpoints(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    for path in ("/v1/sessions/{session_id}/outcomes", "/v1/sessions/{session_id}/end"):
        assert set(paths[path]["post"]["responses"]) >= {"202", "404", "409", "422", "503"}
    assert "202" in paths["/v1/outcomes"]["post"]["responses"]
    schemas = document["components"]["schemas"]
    assert schemas["BatchIn"]["properties"]["events"]["maxItems"] == 1000
    assert schemas["BatchIn"]["additionalProperties"] is False


async def test_readyz_reports_the_metric_registry(client: httpx.AsyncClient) -> None:
    ready = (await client.get("/readyz")).json()
    assert ready["metrics"]["count"] == 17


async def test_a_batch_body_that_is_not_json_is_422_and_writes_nothing(
    client: httpx.AsyncClient, redis_url: str, prefix: str
) -> None:
    response = await client.post(
        "/v1/outcomes", content=b'{"events": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert error_of(response)["message"].startswith("body")
    assert outcome_keys(redis_url, prefix) == []


def test_the_batch_endpoint_is_served_ahead_of_the_routers(settings: Settings) -> None:
    """POST /v1/outcomes reaches the plain route that validates the bytes; the
    APIRoute behind it only describes the endpoint in the OpenAPI document."""
    app = create_app(settings)
    first = next(r for r in app.router.routes if getattr(r, "path", None) == "/v1/outcomes")
    assert not isinstance(first, APIRoute)
    assert "POST" in (first.methods or set())  # type: ignore[attr-defined]
