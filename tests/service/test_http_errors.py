"""What the framework answers itself (no route, a method the path does not take,
a body it cannot decode) comes in the error body every other error has."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/v1/flags", "GET, POST"),
        ("POST", "/v1/flags/stt-provider", "DELETE, GET, PATCH, PUT"),
        ("DELETE", "/v1/sessions", "POST"),
        ("PUT", "/v1/sessions/call-1", "GET"),
    ],
)
async def test_a_method_the_path_does_not_take_is_405_allowing_all_its_methods(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    assert (response.status_code, response.headers["allow"]) == (405, allow)
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_an_unknown_path_is_404_in_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "GET /v1/nowhere: no such resource",
        "context": {},
    }


async def test_a_body_that_is_not_utf8_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/sessions/call-1/end",
        content=b'{"metrics": {"\xff": 1}}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["message"].startswith("request body: not valid JSON")) == (
        "invalid_input",
        True,
    )
