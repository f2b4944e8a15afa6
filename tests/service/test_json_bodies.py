"""JSON request bodies on every endpoint that takes one, through the HTTP API on a
real Redis: a body not declared as JSON is a 415, a key repeated in an object is
a 422 naming it, and neither writes anything."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings, get_settings

ADMIN = {"authorization": "Bearer alice-token"}
SESSION = {"session_id": "call-1", "tenant_id": "acme", "region": "eu"}
PATH_VALUES = {"{session_id}": "call-1", "{key}": "vad-provider"}
# A valid body per operation, so that only the media type or a repeated key is wrong.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/sessions"): {**SESSION, "session_id": "call-2"},
    ("POST", "/v1/sessions/{session_id}/outcomes"): {"metrics": {"mos": 4.1}},
    ("POST", "/v1/sessions/{session_id}/end"): {"metrics": {"duration_s": 12.0}},
    ("POST", "/v1/outcomes"): {"events": [{"session_id": "call-1", "metrics": {"mos": 4}}]},
    ("POST", "/v1/flags"): {"flag_set": {"flags": {}}, "reason": "x"},
    ("PUT", "/v1/flags/{key}"): {"state": "DISABLED", "variants": {"a": "silero"},
                                 "defaultVariant": "a"},
    ("PATCH", "/v1/flags/{key}"): {"state": "DISABLED", "reason": "x"},
    ("POST", "/v1/flags/{key}/rollback"): {"to_version": 1, "reason": "x"},
}  # fmt: skip


def _operations_with_a_body() -> list[tuple[str, str]]:
    document = create_app(Settings(redis_url="redis://unused")).openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    )


OPERATIONS = _operations_with_a_body()


def _url(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace(name, value)
    return path


@pytest.fixture
def settings(redis_url: str, prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        data_dir=tmp_path / "voxroute",
        admin_keys="alice:alice-token",  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, runtime)
    app.dependency_overrides[get_settings] = lambda: settings
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://voxroute", headers=ADMIN
    ) as http:
        created = await http.post("/v1/sessions", json=SESSION)
        assert created.status_code == 201
        yield http


Stored = Callable[[], dict[bytes, bytes | None]]


@pytest.fixture
def stored(redis_url: str, prefix: str) -> Stored:
    """Every key of the test and its serialized value: equal means nothing was written."""

    def snapshot() -> dict[bytes, bytes | None]:
        with redis.Redis.from_url(redis_url) as conn:
            return {key: conn.dump(key) for key in conn.scan_iter(match=f"{prefix}:*")}

    return snapshot


def test_the_bodies_cover_every_operation_that_takes_one() -> None:
    assert set(OPERATIONS) == set(BODIES)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_with_a_body_documents_the_415(method: str, path: str) -> None:
    document = create_app(Settings(redis_url="redis://unused")).openapi()
    assert "415" in document["paths"][path][method.lower()]["responses"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_a_text_plain_body_is_415_and_writes_nothing(
    client: httpx.AsyncClient, stored: Stored, method: str, path: str
) -> None:
    before = stored()
    content = orjson.dumps(BODIES[method, path])
    headers = {"content-type": "text/plain"}
    response = await client.request(method, _url(path), content=content, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert stored() == before


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_the_same_body_as_json_is_not_refused_for_its_media_type(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    content = orjson.dumps(BODIES[method, path])
    headers = {"content-type": "application/json"}
    response = await client.request(method, _url(path), content=content, headers=headers)
    assert response.status_code != 415, response.text


@pytest.mark.parametrize(
    ("content_type", "words"),
    [
        ("text/plain", "'text/plain' is not JSON"),
        ("application/x-www-form-urlencoded", "is not JSON"),  # what `curl -d` sends
        ("multipart/form-data; boundary=x", "is not JSON"),
        ("application/xml", "is not JSON"),
        ("application/jsonx", "is not JSON"),
        ("json", "is not JSON"),
        ("", "is not JSON"),
        ("application/json; charset=latin-1", "JSON bodies are UTF-8"),
        ("application/json; charset=utf-16", "JSON bodies are UTF-8"),
        (None, "Content-Type is missing"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/sessions", "/v1/sessions/call-1/end"])
async def test_a_body_not_declared_as_json_is_415_naming_the_content_type(
    client: httpx.AsyncClient, path: str, content_type: str | None, words: str
) -> None:
    request = client.build_request("POST", path, content=orjson.dumps({**SESSION, "metrics": {}}))
    request.headers.pop("content-type", None)
    if content_type is not None:
        request.headers["content-type"] = content_type
    response = await client.send(request)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert words in error["message"]
    assert "application/json" in error["message"]
    assert error["context"] == {
        "content_type": content_type,
        "expected": ["application/json", "application/*+json"],
    }


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "Application/JSON",
        "application/vnd.voxroute+json",
        "application/json; profile=x",
    ],
)
@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/sessions", {**SESSION, "session_id": "call-3"}, 201),
        ("/v1/sessions/call-1/end", {"metrics": {}}, 202),
    ],
)
async def test_json_media_types_with_parameters_are_taken(
    client: httpx.AsyncClient, content_type: str, path: str, body: dict[str, Any], status: int
) -> None:
    headers = {"content-type": content_type}
    response = await client.post(path, content=orjson.dumps(body), headers=headers)
    assert response.status_code == status, response.text


async def test_no_body_and_no_content_type_is_a_422_naming_the_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/sessions/call-1/end")
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("body")


@pytest.mark.parametrize(
    ("path", "content", "field"),
    [
        ("/v1/sessions", b'{"session_id": "a", "session_id": "b", "tenant_id": "acme", '
         b'"region": "eu"}', "body.session_id"),
        ("/v1/sessions", b'{"session_id": "a", "tenant_id": "acme", "region": "eu", '
         b'"features": {"s2s": true, "s2s": false}}', "body.features.s2s"),
        ("/v1/sessions", b'{"session_id": "a", "tenant_id": "acme", "region": "eu", '
         b'"attributes": {"url": "https://x", "url": "https://y"}}', "body.attributes.url"),
        ("/v1/sessions", b'{"session_id": "a", "tenant_id": "acme", "region": "eu", '
         b'"region": "mars"}', "body.region"),
        ("/v1/outcomes", b'{"events": [{"session_id": "call-1", "metrics": {"mos": 4}}, '
         b'{"session_id": "call-1", "metrics": {"mos": 4, "mos": 1}}]}',
         "body.events.1.metrics.mos"),
        ("/v1/outcomes", b'{"events": [{"session_id": "call-1", "metrics": {"mos": 4}}], '
         b'"mode": "per_event", "mode": "all_or_nothing"}', "body.mode"),
        ("/v1/sessions/call-1/outcomes", b'{"metrics": {"mos": 4, "mos": 1}}',
         "body.metrics.mos"),
        ("/v1/sessions/call-1/end", b'{"event_id": "x", "event_id": "y"}', "body.event_id"),
    ],
)  # fmt: skip
async def test_a_repeated_key_is_422_naming_it_and_writes_nothing(
    client: httpx.AsyncClient, stored: Stored, path: str, content: bytes, field: str
) -> None:
    before = stored()
    headers = {"content-type": "application/json"}
    response = await client.post(path, content=content, headers=headers)
    assert response.status_code == 422, response.text
    key = field.rsplit(".", 1)[1]
    assert response.json()["error"]["message"] == (
        f"{field}: key {key!r} appears more than once in this object; send each key once"
    )
    assert stored() == before


async def test_a_repeated_key_in_a_flag_change_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    content = b'{"state": "DISABLED", "state": "ENABLED", "reason": "x"}'
    headers = {"content-type": "application/json"}
    response = await client.patch("/v1/flags/vad-provider", content=content, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("body.state: key 'state'")
    assert (await client.get("/v1/flags/vad-provider")).headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/sessions", {**SESSION, "session_id": "call:4", "attributes": {
            "url": "https://example.com/a:b", "at": "10:00:00"}}, 201),
        ("/v1/outcomes", {"events": [{"session_id": "call-1", "event_id": "e:1",
                                      "metrics": {"mos": 4}}]}, 202),
    ],
)  # fmt: skip
async def test_colons_inside_strings_are_not_taken_for_repeated_keys(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == status, response.text


async def test_a_chunked_body_over_the_limit_is_413_on_a_fastapi_route(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"metrics": {"mos": 4}, "event_id": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    headers = {"content-type": "application/json"}
    url = "/v1/sessions/call-1/outcomes"
    response = await client.post(url, content=chunks(), headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
