"""One place that maps domain errors (and a body that is not JSON) to HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ExperimentError, experiment_error_handler)
    app.add_exception_handler(AnalysisError, analysis_error_handler)
    app.add_exception_handler(UnsupportedMediaTypeError, unsupported_media_type_handler)
