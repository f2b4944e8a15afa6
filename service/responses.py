"""JSON responses from bytes we already hold (stored session documents) or from dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Response


def json_bytes(
    body: bytes, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return json_bytes(orjson.dumps(body), status_code, headers)
