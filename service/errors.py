"""One place that maps domain errors (and a body that is not JSON) to HTTP responses."""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException

from analysis.errors import AnalysisError
from analysis.errors import ErrorCode as AnalysisErrorCode
from experiments.errors import ErrorCode, ExperimentError

from .api.media_type import UnsupportedMediaTypeError
from .responses import json_response

STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_INPUT: 422,
    ErrorCode.INVALID_FLAGS: 422,
    ErrorCode.INVALID_CATALOG: 422,
    ErrorCode.FLAG_NOT_FOUND: 404,
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.NO_ROUTE: 422,
    ErrorCode.CONFLICT: 409,
    ErrorCode.STORAGE_UNAVAILABLE: 503,
    ErrorCode.SPOOL_FULL: 503,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.PRECONDITION_REQUIRED: 428,
    ErrorCode.READ_ONLY: 409,
    ErrorCode.RATE_LIMITED: 429,
}
RETRY_AFTER_S = "1"
_PATH_PARAMETER = re.compile(r"\{[^/}]+\}")


async def experiment_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ExperimentError)  # noqa: S101 - registered for this type only
    status = STATUS_BY_CODE.get(exc.code, 500)
    headers = {"Retry-After": RETRY_AFTER_S} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif status == 429:
        headers = {"Retry-After": str(exc.context.get("retry_after_s", RETRY_AFTER_S))}
    return json_response({"error": exc.to_dict()}, status, headers)


ANALYSIS_STATUS: dict[AnalysisErrorCode, int] = {
    AnalysisErrorCode.INVALID_INPUT: 422,
    AnalysisErrorCode.UNKNOWN_COHORT: 422,
    AnalysisErrorCode.NO_DATA: 404,
}


async def analysis_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AnalysisError)  # noqa: S101 - registered for this type only
    return json_response({"error": exc.to_dict()}, ANALYSIS_STATUS.get(exc.code, 422))


async def unsupported_media_type_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnsupportedMediaTypeError)  # noqa: S101 - registered for this type only
    return json_response({"error": exc.to_dict()}, 415)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """The errors the framework raises itself, in the body every other error has:
    no route for the path (404), a method the path does not take (405, `Allow`
    naming every method of the path, not only those of the first route matched),
    and a body FastAPI cannot decode (not UTF-8, nested too deep), which is a 422
    as it is on the routes that validate their body from its bytes."""
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this type only
    target = f"{request.method} {request.url.path}"
    if exc.status_code == 405:
        allowed = ", ".join(_allowed_methods(request)) or (exc.headers or {}).get("Allow", "")
        message = f"{target}: method not allowed; allowed: {allowed}"
        return _framework_error("method_not_allowed", message, 405, {"Allow": allowed})
    if exc.status_code == 404:
        return _framework_error("not_found", f"{target}: no such resource", 404)
    if exc.status_code == 400 and exc.__cause__ is not None:
        message = f"request body: not valid JSON: {exc.__cause__}"
        return _framework_error("invalid_input", message, 422)
    return _framework_error("http_error", f"{target}: {exc.detail}", exc.status_code, exc.headers)


def _framework_error(
    code: str, message: str, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    body = {"error": {"code": code, "message": message, "context": {}}}
    return json_response(body, status, headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document gives the request's path (FastAPI makes one
    route per method, and its 405 names only the methods of the first one matched)."""
    path = request.url.path
    for template, operations in request.app.openapi()["paths"].items():
        literal_parts = _PATH_PARAMETER.split(template)
        if re.fullmatch("[^/]+".join(map(re.escape, literal_parts)), path):
            return sorted(method.upper() for method in operations)
    return []


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ExperimentError, experiment_error_handler)
    app.add_exception_handler(AnalysisError, analysis_error_handler)
    app.add_exception_handler(UnsupportedMediaTypeError, unsupported_media_type_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
