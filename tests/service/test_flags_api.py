"""/v1/flags through the HTTP API on a real Redis (redis mode, admin keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings, get_settings

STT = "stt-provider"
ACME = {"authorization": "Bearer acme-token"}
ALICE = {"authorization": "Bearer alice-token"}
BOB = {"authorization": "Bearer bob-token"}
RAMP = {"weights": {"deepgram-nova-3": 80, "assemblyai-universal": 20}, "reason": "ramp down"}


@pytest.fixture
def settings(redis_url: str, prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        data_dir=tmp_path / "voxroute",
        admin_keys="alice:alice-token,bob:bob-token",  # type: ignore[arg-type]
        tenant_keys="acme:acme-token",  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, runtime)
    app.dependency_overrides[get_settings] = lambda: settings
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://voxroute") as http:
        yield http


async def _session(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    body = {"session_id": session_id, "tenant_id": "acme", "region": "eu"}
    doc = (await client.post("/v1/sessions", json=body, headers=ACME)).json()
    (stt,) = [a for a in doc["assignments"] if a["flag_key"] == STT]
    return dict(stt)


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "an API key is required"),
        ({"authorization": "Bearer nope"}, 401, "unknown API key"),
        ({"authorization": "Bearer acme-token"}, 403, "key 'acme' (tenant) may not do this"),
    ],
)
async def test_only_admin_and_reader_keys_may_read_flags(
    client: httpx.AsyncClient, headers: dict[str, str], status: int, words: str
) -> None:
    response = await client.get("/v1/flags", headers=headers)
    assert response.status_code == status
    assert words in response.json()["error"]["message"]


async def test_without_keys_flags_are_read_from_the_file_and_writes_refused_with_a_hint(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """Development mode (no key anywhere): the flag file is the live set, served to
    anyone; a change is refused with a hint on how to manage flags through the API."""
    settings = Settings(redis_url=redis_url, key_prefix=prefix, data_dir=tmp_path / "voxroute")
    runtime = await Runtime.start(settings)
    app = create_app(settings, runtime)
    app.dependency_overrides[get_settings] = lambda: settings
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://voxroute"
        ) as http:
            listed = await http.get("/v1/flags")
            flag = await http.get(f"/v1/flags/{STT}")
            changed = await http.patch(
                f"/v1/flags/{STT}", json=RAMP, headers={"if-match": flag.headers["etag"]}
            )
    finally:
        await runtime.stop()
    assert listed.status_code == 200
    assert changed.status_code == 409
    assert "VOXROUTE_FLAG_STORE=redis" in changed.json()["error"]["message"]


async def test_the_list_shows_versions_states_and_splits(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/flags", headers=ALICE)).json()
    assert body["set_version"] == 1
    flags = {flag["key"]: flag for flag in body["flags"]}
    assert flags[STT]["version"] == 1
    assert flags[STT]["splits"][0]["weights"] == {
        "deepgram-nova-3": 50,
        "assemblyai-universal": 50,
    }


async def test_get_returns_the_definition_with_its_version_as_etag(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/v1/flags/{STT}", headers=ALICE)
    assert response.headers["etag"] == '"1"'
    assert response.json()["definition"]["defaultVariant"] == "deepgram-nova-3"
    missing = await client.get("/v1/flags/nope", headers=ALICE)
    assert missing.status_code == 404


async def test_put_takes_the_document_back_with_if_match(client: httpx.AsyncClient) -> None:
    got = await client.get("/v1/flags/vad-provider", headers=ALICE)
    document = got.json()
    document["definition"]["defaultVariant"] = "webrtc"
    headers = {**ALICE, "if-match": got.headers["etag"]}
    response = await client.put("/v1/flags/vad-provider", json=document, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["changes"][0]["new_version"] == 2
    again = await client.get("/v1/flags/vad-provider", headers=ALICE)
    assert (again.headers["etag"], again.json()["definition"]["defaultVariant"]) == (
        '"2"',
        "webrtc",
    )


async def test_put_without_if_match_is_428(client: httpx.AsyncClient) -> None:
    document = (await client.get("/v1/flags/vad-provider", headers=ALICE)).json()
    response = await client.put("/v1/flags/vad-provider", json=document, headers=ALICE)
    assert response.status_code == 428


async def test_a_stale_write_is_409_and_changes_nothing(client: httpx.AsyncClient) -> None:
    got = await client.get("/v1/flags/vad-provider", headers=ALICE)
    stale = {**ALICE, "if-match": got.headers["etag"]}
    patched = await client.patch(
        "/v1/flags/vad-provider", json={"defaultVariant": "webrtc"}, headers=BOB
    )
    assert patched.status_code == 200
    document = got.json()["definition"]
    document["state"] = "DISABLED"
    response = await client.put("/v1/flags/vad-provider", json=document, headers=stale)
    assert response.status_code == 409
    assert response.json()["error"]["context"]["current_version"] == 2
    now = (await client.get("/v1/flags/vad-provider", headers=ALICE)).json()["definition"]
    assert (now["state"], now["defaultVariant"]) == ("ENABLED", "webrtc")


async def test_create_with_if_none_match(client: httpx.AsyncClient) -> None:
    flag = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    headers = {**ALICE, "if-none-match": "*"}
    created = await client.put("/v1/flags/new-flag", json=flag, headers=headers)
    assert created.status_code == 200
    assert (await client.put("/v1/flags/new-flag", json=flag, headers=headers)).status_code == 409


@pytest.mark.parametrize(
    "if_match",
    ["9" * 5000, '"' + "9" * 19 + '"', '"abc"', '"-1"', '"7', "7 8", '"1", "2"', "*", ""],
)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_malformed_if_match_is_422_naming_the_header_and_changes_nothing(
    client: httpx.AsyncClient, method: str, if_match: str
) -> None:
    headers = {**ALICE, "if-match": if_match}
    json = {"defaultVariant": "webrtc"} if method != "DELETE" else None
    response = await client.request(method, "/v1/flags/vad-provider", json=json, headers=headers)
    assert response.status_code == 422, response.text
    assert "if-match" in response.json()["error"]["message"]
    assert (await client.get("/v1/flags/vad-provider", headers=ALICE)).headers["etag"] == '"1"'


@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"'])
async def test_if_match_takes_the_etag_quoted_bare_or_weak(
    client: httpx.AsyncClient, if_match: str
) -> None:
    headers = {**ALICE, "if-match": if_match}
    patch = {"defaultVariant": "webrtc"}
    response = await client.patch("/v1/flags/vad-provider", json=patch, headers=headers)
    assert response.status_code == 200, response.text


async def test_if_none_match_takes_only_a_star(client: httpx.AsyncClient) -> None:
    flag = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    headers = {**ALICE, "if-none-match": '"3"'}
    response = await client.put("/v1/flags/new-flag", json=flag, headers=headers)
    assert response.status_code == 422
    assert "if-none-match" in response.json()["error"]["message"]


async def test_the_openapi_document_gives_the_precondition_headers_a_format(
    client: httpx.AsyncClient,
) -> None:
    operation = (await client.get("/openapi.json")).json()["paths"]["/v1/flags/{key}"]["put"]
    headers = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "header"}
    # a string with a format, without a `null` branch (an absent header is not sent)
    assert headers["if-match"] == {
        "type": "string", "pattern": '^(W/)?("[0-9]{1,18}"|[0-9]{1,18})$', "maxLength": 22,
        "title": "If-Match",
    }  # fmt: skip
    assert headers["if-none-match"] == {
        "type": "string", "pattern": r"^\*$", "maxLength": 1, "title": "If-None-Match"
    }  # fmt: skip


async def test_a_weight_change_is_used_by_new_sessions_at_once(client: httpx.AsyncClient) -> None:
    before = await _session(client, "call-1")
    response = await client.patch(f"/v1/flags/{STT}", json=RAMP, headers=ALICE)
    assert response.status_code == 200
    assert "periods" in response.json()["warnings"][0]
    after = await _session(client, "call-2")
    assert before["split"]["weights"] == {"deepgram-nova-3": 50, "assemblyai-universal": 50}
    assert after["split"]["weights"] == {"deepgram-nova-3": 80, "assemblyai-universal": 20}
    assert (before["flag_version"].split(":")[0], after["flag_version"].split(":")[0]) == ("1", "2")
    assert await _session(client, "call-1") == before  # a pinned session keeps its route


async def test_a_running_split_needs_a_reason(client: httpx.AsyncClient) -> None:
    response = await client.patch(f"/v1/flags/{STT}", json={**RAMP, "reason": ""}, headers=ALICE)
    assert response.status_code == 422
    assert response.json()["error"]["context"]["field"] == "reason"


async def test_an_invalid_change_is_422_naming_flag_path_and_problem(
    client: httpx.AsyncClient,
) -> None:
    zero = {"weights": {"deepgram-nova-3": 0, "assemblyai-universal": 0}, "reason": "x"}
    response = await client.patch(f"/v1/flags/{STT}", json=zero, headers=ALICE)
    assert response.status_code == 422
    context = response.json()["error"]["context"]
    assert (context["flag_key"], context["path"]) == (STT, "/targeting/if/3")
    assert "sum to 0" in context["problem"]
    assert (await client.get(f"/v1/flags/{STT}", headers=ALICE)).headers["etag"] == '"1"'


async def test_a_dry_run_shows_the_diff_and_publishes_nothing(client: httpx.AsyncClient) -> None:
    response = await client.patch(
        f"/v1/flags/{STT}", params={"dry_run": "true"}, json=RAMP, headers=ALICE
    )
    body = response.json()
    assert (body["dry_run"], body["published"], body["valid"]) == (True, False, True)
    assert body["changes"][0]["diff"][0]["new"] == 80
    assert (await client.get(f"/v1/flags/{STT}", headers=ALICE)).headers["etag"] == '"1"'


async def test_disable_routes_new_sessions_to_the_default(client: httpx.AsyncClient) -> None:
    body = {"state": "DISABLED", "reason": "assemblyai incident"}
    response = await client.patch(f"/v1/flags/{STT}", json=body, headers=ALICE)
    assert any("catalog defaults" in w for w in response.json()["warnings"])
    stt = await _session(client, "call-3")
    assert (stt["reason"], stt["value"]) == ("DISABLED", None)
    doc = (await client.get("/v1/sessions/call-3", headers=ACME)).json()
    assert doc["route"]["stt"]["id"] == "deepgram/nova-3"


async def test_push_validates_the_whole_set(client: httpx.AsyncClient) -> None:
    flag = (await client.get(f"/v1/flags/{STT}", headers=ALICE)).json()["definition"]
    alone = {"flag_set": {"flags": {STT: flag}}, "reason": "x"}
    response = await client.post("/v1/flags", json=alone, headers=ALICE)
    assert response.status_code == 422
    assert "missing evaluator 'split-regions'" in response.json()["error"]["message"]
    flag["variants"]["deepgram-nova-3"] = "cartesia/sonic-2"
    evaluators = {"split-regions": {"in": [{"var": "region"}, ["us", "eu"]]}}
    wrong_kind = {"flag_set": {"flags": {STT: flag}, "$evaluators": evaluators}, "reason": "x"}
    response = await client.post("/v1/flags", json=wrong_kind, headers=ALICE)
    assert response.status_code == 422
    assert "tts provider" in response.json()["error"]["message"]
    assert (await client.get("/v1/flags", headers=ALICE)).json()["set_version"] == 1


async def test_history_and_rollback(client: httpx.AsyncClient) -> None:
    original = (await client.get(f"/v1/flags/{STT}", headers=ALICE)).json()["definition"]
    await client.patch(f"/v1/flags/{STT}", json=RAMP, headers=ALICE)
    await client.patch(f"/v1/flags/{STT}", json={"state": "DISABLED", "reason": "x"}, headers=BOB)
    back = await client.post(
        f"/v1/flags/{STT}/rollback", json={"to_version": 1, "reason": "undo"}, headers=BOB
    )
    assert back.status_code == 200
    restored = await client.get(f"/v1/flags/{STT}", headers=ALICE)
    assert (restored.headers["etag"], restored.json()["definition"]) == ('"4"', original)
    history = (await client.get(f"/v1/flags/{STT}/history", headers=ALICE)).json()["entries"]
    assert [(e["new_version"], e["author"], e["action"], e["reason"]) for e in history] == [
        (4, "bob", "rollback", "undo"),
        (3, "bob", "patch", "x"),
        (2, "alice", "patch", "ramp down"),
        (1, "voxroute", "seed", history[-1]["reason"]),
    ]


async def test_a_deleted_flag_keeps_its_history(client: httpx.AsyncClient) -> None:
    params = {"reason": "retired"}
    await client.request("DELETE", f"/v1/flags/{STT}", params=params, headers=ALICE)
    response = await client.get(f"/v1/flags/{STT}/history", headers=ALICE)
    assert response.status_code == 200
    assert [e["action"] for e in response.json()["entries"]] == ["delete", "seed"]


async def test_the_history_of_a_key_never_seen_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/flags/no-such-flag/history", headers=ALICE)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "flag_not_found"


async def test_a_flag_with_an_integer_beyond_2_53_is_refused(client: httpx.AsyncClient) -> None:
    flag = {"state": "ENABLED", "variants": {"on": 2**64, "off": 0}, "defaultVariant": "off"}
    headers = {**ALICE, "if-none-match": "*"}
    response = await client.put("/v1/flags/big", json=flag, headers=headers)
    assert response.status_code == 422
    assert "within ±2**53" in response.json()["error"]["message"]
    assert (await client.get("/v1/flags", headers=ALICE)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", f"/v1/flags/{STT}/rollback", {"to_version": 2**64}, {}),
        ("PATCH", f"/v1/flags/{STT}", {"weights": {"deepgram-nova-3": 2**64}}, {}),
        ("PATCH", f"/v1/flags/{STT}", {"state": "DISABLED"}, {"if-match": "seven"}),
        ("PATCH", f"/v1/flags/{STT}", {"state": "DISABLED"}, {"if-match": '"1' + "0" * 30 + '"'}),
        ("PUT", "/v1/flags/new-flag", {"variants": {"a": 1}}, {"if-none-match": '"3"'}),
    ],
)
async def test_a_value_outside_the_documented_schema_is_422(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    response = await client.request(method, path, json=body, headers={**ALICE, **headers})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


async def test_delete_falls_back_to_the_default(client: httpx.AsyncClient) -> None:
    response = await client.request(
        "DELETE", f"/v1/flags/{STT}", params={"reason": "stop"}, headers=ALICE
    )
    assert response.status_code == 200
    body = {"session_id": "call-9", "tenant_id": "acme", "region": "eu"}
    doc = (await client.post("/v1/sessions", json=body, headers=ACME)).json()
    assert doc["fallbacks"][0]["reason"] == "flag_not_found"


async def test_the_openapi_document_lists_the_flag_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/flags", "/v1/flags/{key}", "/v1/flags/{key}/history"} <= set(paths)
    assert set(paths["/v1/flags/{key}"]) == {"get", "put", "patch", "delete"}
