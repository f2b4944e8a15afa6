"""Who may do what, on a real Redis: two tenants with their keys, a reader, an
admin. Every isolation rule of docs/security.md is one test here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings

pytestmark = pytest.mark.redis

ACME = {"authorization": "Bearer acme-token"}
GLOBEX = {"authorization": "Bearer globex-token"}
READER = {"authorization": "Bearer dash-token"}
ADMIN = {"authorization": "Bearer alice-token"}
UNKNOWN = {"authorization": "Bearer vrk_not-a-key"}


@pytest.fixture
def settings(redis_url: str, prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        data_dir=tmp_path / "voxroute",
        admin_keys="alice:alice-token",  # type: ignore[arg-type]
        tenant_keys="acme:acme-token,globex:globex-token",  # type: ignore[arg-type]
        reader_keys="dash:dash-token",  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://voxroute") as http:
        yield http


def _session(session_id: str, **extra: Any) -> dict[str, Any]:
    return {"session_id": session_id, "region": "eu", **extra}


def _keys(redis_url: str, prefix: str) -> set[bytes]:
    with redis.Redis.from_url(redis_url) as conn:
        return set(conn.scan_iter(match=f"{prefix}:*"))


async def _acme_session(client: httpx.AsyncClient, session_id: str = "call-a") -> None:
    response = await client.post("/v1/sessions", json=_session(session_id), headers=ACME)
    assert response.status_code == 201, response.text


# --- who is asked for a key ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/sessions"),
        ("GET", "/v1/sessions/call-a"),
        ("POST", "/v1/sessions/call-a/outcomes"),
        ("POST", "/v1/sessions/call-a/end"),
        ("POST", "/v1/outcomes"),
        ("GET", "/v1/experiments"),
        ("GET", "/v1/experiments/stt-provider/results"),
        ("GET", "/v1/flags"),
        ("GET", "/v1/flags/stt-provider"),
    ],
)
@pytest.mark.parametrize("headers", [{}, UNKNOWN, {"authorization": "Basic YWxpY2U6eA=="}])
async def test_every_endpoint_needs_a_known_key(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await client.request(method, path, json={}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_401_writes_nothing(client: httpx.AsyncClient, redis_url: str, prefix: str) -> None:
    before = _keys(redis_url, prefix)
    response = await client.post("/v1/sessions", json=_session("call-x", tenant_id="acme"))
    assert response.status_code == 401
    assert _keys(redis_url, prefix) == before


async def test_health_is_open_and_readyz_says_only_ready_without_a_key(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    bare = await client.get("/readyz")
    assert bare.status_code == 200
    assert bare.json() == {"ready": True}
    full = (await client.get("/readyz", headers=READER)).json()
    assert full["auth"]["mode"] == "enforced"
    assert "redis" in full


async def test_no_token_appears_in_readyz_or_errors(client: httpx.AsyncClient) -> None:
    bodies = [
        (await client.get("/readyz", headers=ADMIN)).text,
        (await client.get("/v1/flags", headers=ACME)).text,
        (await client.get("/v1/flags", headers=UNKNOWN)).text,
    ]
    for token in ("alice-token", "acme-token", "dash-token", "vrk_not-a-key"):
        assert all(token not in body for body in bodies)


# --- tenant keys -----------------------------------------------------------------


async def test_a_tenant_key_creates_sessions_for_its_own_tenant_when_none_is_named(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/sessions", json=_session("call-a"), headers=ACME)
    assert response.status_code == 201
    assert response.json()["tenant_id"] == "acme"


async def test_a_tenant_key_creating_a_session_for_another_tenant_is_403_and_writes_nothing(
    client: httpx.AsyncClient, redis_url: str, prefix: str
) -> None:
    before = _keys(redis_url, prefix)
    body = _session("call-g", tenant_id="globex")
    response = await client.post("/v1/sessions", json=body, headers=ACME)
    assert response.status_code == 403
    assert response.json()["error"]["context"]["field"] == "tenant_id"
    assert _keys(redis_url, prefix) == before


async def test_an_admin_key_must_name_the_tenant(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sessions", json=_session("call-z"), headers=ADMIN)
    assert response.status_code == 422
    assert "body.tenant_id" in response.json()["error"]["message"]
    named = await client.post("/v1/sessions", json=_session("call-z", tenant_id="globex"),
                              headers=ADMIN)  # fmt: skip
    assert named.status_code == 201


async def test_another_tenants_session_is_not_found(client: httpx.AsyncClient) -> None:
    await _acme_session(client)
    theirs = await client.get("/v1/sessions/call-a", headers=GLOBEX)
    unknown = await client.get("/v1/sessions/call-none", headers=GLOBEX)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"]["message"] == unknown.json()["error"]["message"].replace(
        "call-none", "call-a"
    )
    assert (await client.get("/v1/sessions/call-a", headers=ACME)).status_code == 200
    assert (await client.get("/v1/sessions/call-a", headers=ADMIN)).status_code == 200


@pytest.mark.parametrize("path", ["/v1/sessions/call-a/outcomes", "/v1/sessions/call-a/end"])
async def test_outcomes_into_another_tenants_session_are_404_and_write_nothing(
    client: httpx.AsyncClient, redis_url: str, prefix: str, path: str
) -> None:
    await _acme_session(client)
    before = _keys(redis_url, prefix)
    response = await client.post(path, json={"metrics": {"duration_s": 3.0}}, headers=GLOBEX)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "session_not_found"
    assert _keys(redis_url, prefix) == before
    with redis.Redis.from_url(redis_url) as conn:
        assert all(conn.xlen(k) == 0 for k in conn.scan_iter(match=f"{prefix}:*:outcomes"))


async def test_an_outcome_naming_another_tenant_is_403(client: httpx.AsyncClient) -> None:
    await _acme_session(client)
    body = {"metrics": {"duration_s": 3.0}, "tenant_id": "globex"}
    response = await client.post("/v1/sessions/call-a/end", json=body, headers=ACME)
    assert response.status_code == 403


async def test_a_batch_with_another_tenants_event_is_404_all_or_nothing(
    client: httpx.AsyncClient,
) -> None:
    await _acme_session(client, "call-a")
    mine = await client.post("/v1/sessions", json=_session("call-g"), headers=GLOBEX)
    assert mine.status_code == 201
    events = [
        {"session_id": "call-g", "metrics": {"duration_s": 1.0}},
        {"session_id": "call-a", "metrics": {"duration_s": 2.0}},
    ]
    response = await client.post("/v1/outcomes", json={"events": events}, headers=GLOBEX)
    assert response.status_code == 404
    assert "events[1].session_id" in response.json()["error"]["message"]


async def test_a_per_event_batch_rejects_only_the_other_tenants_events(
    client: httpx.AsyncClient,
) -> None:
    await _acme_session(client, "call-a")
    await client.post("/v1/sessions", json=_session("call-g"), headers=GLOBEX)
    events = [
        {"session_id": "call-g", "metrics": {"duration_s": 1.0}},
        {"session_id": "call-a", "metrics": {"duration_s": 2.0}},
        {"session_id": "call-none", "metrics": {"duration_s": 2.0}},
    ]
    body = {"events": events, "mode": "per_event"}
    response = await client.post("/v1/outcomes", json=body, headers=GLOBEX)
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["appended", "rejected", "rejected"]
    assert (
        results[1]["errors"][0]["code"] == results[2]["errors"][0]["code"] == ("session_not_found")
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/experiments"),
        ("GET", "/v1/experiments/stt-provider/results"),
        ("GET", "/v1/flags"),
        ("PATCH", "/v1/flags/stt-provider"),
    ],
)
async def test_a_tenant_key_may_not_read_experiments_or_flags(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json={}, headers=ACME)
    assert response.status_code == 403
    assert response.json()["error"]["context"] == {"key": "acme", "role": "tenant"}


# --- reader keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/sessions"),
        ("GET", "/v1/sessions/call-a"),
        ("POST", "/v1/sessions/call-a/end"),
        ("POST", "/v1/outcomes"),
        ("PATCH", "/v1/flags/stt-provider"),
        ("POST", "/v1/flags"),
        ("DELETE", "/v1/flags/stt-provider"),
    ],
)
async def test_a_reader_key_may_not_touch_sessions_outcomes_or_change_flags(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json={}, headers=READER)
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/v1/experiments", "/v1/flags", "/v1/flags/stt-provider"])
async def test_a_reader_key_reads_experiments_and_flags(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path, headers=READER)).status_code == 200


# --- rate limits -----------------------------------------------------------------


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_tenant": 0.5, "rate_limit_burst_s": 4.0})


async def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    limited: Settings, redis_url: str, prefix: str
) -> None:
    runtime = await Runtime.start(limited)
    try:
        transport = httpx.ASGITransport(app=create_app(limited, runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://v") as http:
            burst = [
                (await http.post("/v1/sessions", json=_session(f"c{i}"), headers=ACME)).status_code
                for i in range(2)
            ]  # a burst of 0.5/s x 4 s: two requests
            over = await http.post("/v1/sessions", json=_session("c9"), headers=ACME)
            other_tenant = await http.post("/v1/sessions", json=_session("g1"), headers=GLOBEX)
            admin = [
                (await http.get("/v1/flags", headers=ADMIN)).status_code for _ in range(5)
            ]  # no limit set for admin keys
    finally:
        await runtime.stop()
    assert burst == [201, 201]
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["retry-after"]) <= 2  # a token every 2 s
    assert other_tenant.status_code == 201  # a bucket per key
    assert admin == [200] * 5
    with redis.Redis.from_url(redis_url) as conn:
        assert conn.exists(f"{prefix}:{{s0}}:session:c0")
        assert not conn.exists(f"{prefix}:{{s0}}:session:c9")  # refused before any write
