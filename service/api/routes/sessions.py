"""POST /v1/sessions and GET /v1/sessions/{session_id}."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from experiments.sessions import SessionService

from ...auth import SessionCallerDep, acting_tenant, owner_of, session_caller
from ...responses import json_bytes
from ..body import read_body, request_body
from ..deps import SessionsDep
from ..schemas import AUTH_RESPONSES, NOT_JSON, ErrorOut, SessionIdPath, SessionIn, SessionOut

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

_SESSION = {"session_id": "$response.body#/session_id"}
_SESSION_LINKS = {
    "GetSession": {
        "operationRef": "#/paths/~1v1~1sessions~1{session_id}/get",
        "parameters": _SESSION,
    },
    "ReportOutcome": {
        "operationRef": "#/paths/~1v1~1sessions~1{session_id}~1outcomes/post",
        "parameters": _SESSION,
    },
    "EndSession": {
        "operationRef": "#/paths/~1v1~1sessions~1{session_id}~1end/post",
        "parameters": _SESSION,
    },
}


@router.post(
    "",
    status_code=201,
    response_model=None,
    summary="Route a new session and pin its providers",
    openapi_extra=request_body(SessionIn),
    responses={
        201: {
            "model": SessionOut,
            "description": "Created: the route is pinned from now on.",
            "links": _SESSION_LINKS,
        },
        200: {
            "model": SessionOut,
            "description": "The session existed: its pinned route.",
            "links": _SESSION_LINKS,
        },
        **AUTH_RESPONSES,
        409: {"model": ErrorOut, "description": "The session id belongs to another tenant."},
        413: {"model": ErrorOut, "description": "Body over the size limit (64 KiB)."},
        **NOT_JSON,
        422: {
            "model": ErrorOut,
            "description": "Invalid input (a repeated key too), or no route can be built.",
        },
        503: {"model": ErrorOut, "description": "Storage unavailable; retry after Retry-After."},
    },
)
async def create_session(request: Request) -> Response:
    """Evaluate the routing flags for this session, pin the route and record one
    assignment per evaluated flag. Idempotent: a repeated `session_id` returns
    the route pinned the first time (200) and records nothing."""
    # The hot path: the body is validated straight from its bytes (pydantic-core)
    # instead of through FastAPI's parameter machinery; errors are the usual 415/422.
    caller = await session_caller(request)
    session = await read_body(SessionIn, request)
    tenant_id = acting_tenant(caller, session.tenant_id)
    sessions: SessionService = request.app.state.runtime.sessions
    result = await sessions.create(session.to_context(tenant_id))
    return json_bytes(result.document, 201 if result.created else 200)


def register_hot_path(app: FastAPI) -> None:
    """Serve `create_session` as a plain Starlette route too; call this before
    including the routers, so that it is matched first.

    POST /v1/sessions is the hot path. Served this way it skips FastAPI's
    routing through the included routers and its request handler (dependency
    solving, exit stacks), a large share of a request's CPU (bench/bench_sessions.py).
    The middleware and the exception handlers (422, 413, 409, 503) are the
    same, and so is every response. The APIRoute above is never reached for
    POST; it still describes the endpoint in the OpenAPI document (a plain
    route is not in it)."""
    app.router.add_route("/v1/sessions", create_session, methods=["POST"], include_in_schema=False)


@router.get(
    "/{session_id}",
    response_model=None,
    summary="The pinned route of a session",
    responses={
        200: {"model": SessionOut},
        **AUTH_RESPONSES,
        404: {"model": ErrorOut, "description": "Unknown, expired, or another tenant's."},
    },
)
async def get_session(
    session_id: SessionIdPath, sessions: SessionsDep, caller: SessionCallerDep
) -> Response:
    return json_bytes(await sessions.get(session_id, owner=owner_of(caller)))
