"""POST /v1/sessions and GET /v1/sessions/{session_id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from experiments.context import MAX_ID_LENGTH

from ...responses import json_bytes
from ..deps import SessionsDep
from ..schemas import ErrorOut, SessionIn, SessionOut

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
SessionIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


@router.post(
    "",
    status_code=201,
    response_model=None,
    summary="Route a new session and pin its providers",
    responses={
        201: {"model": SessionOut, "description": "Created: the route is pinned from now on."},
        200: {"model": SessionOut, "description": "The session existed: its pinned route."},
        409: {"model": ErrorOut, "description": "The session id belongs to another tenant."},
        413: {"model": ErrorOut, "description": "Body over the size limit (64 KiB)."},
        422: {"model": ErrorOut, "description": "Invalid input, or no route can be built."},
        503: {"model": ErrorOut, "description": "Storage unavailable; retry after Retry-After."},
    },
)
async def create_session(body: SessionIn, sessions: SessionsDep) -> Response:
    """Evaluate the routing flags for this session, pin the route and record one
    assignment per evaluated flag. Idempotent: a repeated `session_id` returns
    the route pinned the first time (200) and records nothing."""
    result = await sessions.create(body.to_context())
    return json_bytes(result.document, 201 if result.created else 200)


@router.get(
    "/{session_id}",
    response_model=None,
    summary="The pinned route of a session",
    responses={200: {"model": SessionOut}, 404: {"model": ErrorOut}},
)
async def get_session(session_id: SessionIdPath, sessions: SessionsDep) -> Response:
    return json_bytes(await sessions.get(session_id))
