"""JSON request bodies: declared as JSON (else 415), every key once per object
(else 422), validated.

Hot paths (`read_body`): pydantic-core parses and validates the JSON in one
pass, instead of FastAPI decoding it with the standard library first and
validating the objects after; errors are the usual 422 (`RequestValidationError`,
fields under `body`). A route that reads its body this way declares it with
`request_body`, so that the OpenAPI document still shows it.

Other routes: `JsonBodyRoute` checks the media type and the keys before FastAPI
reads the body.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from .duplicate_keys import reject_duplicate_keys
from .media_type import require_json


class KeyCountedBody(BaseModel):
    """A body model that can count the keys of the JSON objects it was validated
    from, for `parse_body`'s duplicate-key check.

    `json_key_count` must never count more keys than the validated JSON held
    (fields set, plus the keys of dict fields, plus those of nested models):
    counting fewer is safe (the exact check runs) but slow."""

    def json_key_count(self) -> int:
        raise NotImplementedError


M = TypeVar("M", bound=KeyCountedBody)


def parse_body(model: type[M], body: bytes) -> M:
    """`body` validated as `model`; a 422 naming each wrong field, or a repeated key,
    otherwise.

    Every key of a JSON object is followed by one colon outside strings, and a
    repeated key leaves fewer keys in the parsed objects than the body has, so
    when the body holds exactly as many colons as the model counts keys, no key
    repeats. `bytes.count` is a C loop and the model's count a short Python
    one, a small part of the validation (bench/bench_sessions.py and
    bench/bench_outcomes.py); the exact check (`find_duplicate_key`, a second
    parse with the standard library) runs only when the counts differ: a colon
    inside a string (a URL, a time), or a repeated key. orjson and pydantic-core
    cannot report repeated keys, and parsing every body twice would cost more
    than the validation itself."""
    try:
        value = model.model_validate_json(body)
    except ValidationError as exc:
        reject_duplicate_keys(body)  # a repeated key explains the errors better
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=body) from None
    if body.count(b":") != value.json_key_count():
        reject_duplicate_keys(body)
    return value


async def read_body(model: type[M], request: Request) -> M:
    """The request's body validated as `model`: 415 unless it is declared as JSON
    (checked before the body is read), then as `parse_body`."""
    require_json(request.scope)
    return parse_body(model, await request.body())


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` that documents a required JSON body of `model`."""
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class JsonBodyRoute(APIRoute):
    """An `APIRoute` whose JSON body is checked before FastAPI reads it: 415
    unless it is declared as JSON, 422 if a key repeats in an object. The
    routers of endpoints with a body use it (`APIRouter(route_class=...)`)."""

    def get_route_handler(self) -> Handler:
        handler: Handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked(request: Request) -> Response:
            require_json(request.scope)
            reject_duplicate_keys(await request.body())  # FastAPI reuses the bytes read
            return await handler(request)

        return checked
