"""POST /v1/sessions/{session_id}/outcomes, POST /v1/sessions/{session_id}/end and
POST /v1/outcomes: measurements of sessions, validated against the metric registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from experiments.access import Principal
from experiments.outcomes import OutcomeService

from ...auth import SessionCallerDep, acting_tenant, owner_of, session_caller
from ...responses import json_response
from ..body import JsonBodyRoute, read_body
from ..deps import OutcomesDep
from ..outcome_schemas import (
    BatchIn,
    BatchOut,
    EndIn,
    OutcomeIn,
    OutcomeOut,
    batch_out,
    outcome_out,
)
from ..schemas import AUTH_RESPONSES, NOT_JSON, ErrorOut, SessionIdPath

router = APIRouter(prefix="/v1", tags=["outcomes"], route_class=JsonBodyRoute)


_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"model": ErrorOut, "description": "Unknown session, expired, or another tenant's."},
    409: {"model": ErrorOut, "description": "`tenant_id` given and the session is another's."},
    413: {"model": ErrorOut, "description": "Body over the size limit."},
    **NOT_JSON,
    422: {
        "model": ErrorOut,
        "description": "Invalid input (a repeated key too); the message names each field.",
    },
    503: {"model": ErrorOut, "description": "Storage unavailable; retry after Retry-After."},
}
_ONE = {202: {"model": OutcomeOut, "description": "Accepted: stored, or a duplicate."}, **_ERRORS}


@router.post(
    "/sessions/{session_id}/outcomes",
    status_code=202,
    response_model=None,
    summary="Report measurements of one session (one turn, or the whole session)",
    responses=_ONE,
)
async def report_outcome(
    session_id: SessionIdPath, body: OutcomeIn, outcomes: OutcomesDep, caller: SessionCallerDep
) -> Response:
    """Validate every metric against the registry and store the event once per
    `event_id`: a retry with the same id answers `duplicate` and writes nothing."""
    tenant_id = acting_tenant(caller, body.tenant_id)
    report = body.to_report(session_id)
    result = await outcomes.record(report, tenant_id=tenant_id, owner=owner_of(caller))
    return json_response(outcome_out(result), 202)


@router.post(
    "/sessions/{session_id}/end",
    status_code=202,
    response_model=None,
    summary="Record the end of a session with its session-level measurements",
    responses=_ONE,
)
async def end_session(
    session_id: SessionIdPath, body: EndIn, outcomes: OutcomesDep, caller: SessionCallerDep
) -> Response:
    """An `end` outcome (e.g. `duration_s`, `cost_usd`); its id defaults to `end`,
    so repeating the call stores it once."""
    tenant_id = acting_tenant(caller, body.tenant_id)
    report = body.to_report(session_id)
    result = await outcomes.record(report, tenant_id=tenant_id, owner=owner_of(caller))
    return json_response(outcome_out(result), 202)


@router.post(
    "/outcomes",
    status_code=202,
    response_model=None,
    summary="Report up to 1,000 events of any sessions at once",
    responses={202: {"model": BatchOut, "description": "One result per event."}, **_ERRORS},
)
async def report_outcomes(
    body: BatchIn, outcomes: OutcomesDep, caller: SessionCallerDep
) -> Response:
    """`all_or_nothing` (default): a 404/409/422 naming every failing event
    (`events[3].metrics.mos`) and nothing written, or 202 with every event
    `appended` or `duplicate`. `per_event`: always 202; rejected events carry
    their errors and the others are written. With a tenant key, events of
    other tenants' sessions are not found (404, or rejected per event)."""
    return await _record_batch(body, outcomes, caller)


async def _serve_batch(request: Request) -> Response:
    """`report_outcomes` with its body validated straight from the bytes."""
    caller = await session_caller(request)
    body = await read_body(BatchIn, request)
    return await _record_batch(body, request.app.state.runtime.outcomes, caller)


async def _record_batch(body: BatchIn, outcomes: OutcomeService, caller: Principal) -> Response:
    reports = [event.to_report() for event in body.events]
    tenant_id = acting_tenant(caller, body.tenant_id)
    results = await outcomes.record_batch(
        reports, mode=body.mode, tenant_id=tenant_id, owner=owner_of(caller)
    )
    return json_response(batch_out(results), 202)


def register_hot_path(app: FastAPI) -> None:
    """Serve POST /v1/outcomes from a plain Starlette route ahead of the routers,
    as `sessions.register_hot_path` does for POST /v1/sessions: collectors call
    the batch endpoint in a loop, and this skips FastAPI's routing through the
    routers and its body handling (the standard library's JSON decoder, then
    validation). Responses and errors are the same; `report_outcomes` above
    still describes the endpoint in the OpenAPI document."""
    app.router.add_route("/v1/outcomes", _serve_batch, methods=["POST"], include_in_schema=False)
