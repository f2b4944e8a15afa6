"""Request bodies validated straight from their bytes, for the hot paths.

pydantic-core parses and validates the JSON in one pass, instead of FastAPI
decoding it with the standard library first and validating the objects after;
errors are the usual 422 (`RequestValidationError`, fields under `body`).
A route that reads its body this way declares it with `request_body`, so that
the OpenAPI document still shows it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: bytes) -> M:
    """`body` validated as `model`; a 422 naming each wrong field otherwise."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=body) from None


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` that documents a required JSON body of `model`."""
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}
