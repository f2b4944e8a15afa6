"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from ...auth import authenticate, bearer_token
from ...observability.prometheus import CONTENT_TYPE, exposition
from ...responses import json_response
from ..deps import RuntimeDep
from ..schemas import AUTH_RESPONSES

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process serves")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready or not; with an API key, also Redis, spool, flags, catalog, auth mode",
    response_model=None,
    responses={
        503: {
            "description": "Not ready: the same report, saying what is missing.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def readyz(request: Request, runtime: RuntimeDep) -> Response:
    """Open to probes: without a valid key the body is only `{"ready": true|false}`;
    any valid key (anyone, in development mode) gets the full report."""
    report = await runtime.readiness()
    status = 200 if report["ready"] else 503
    caller = await runtime.keyring.authenticate(bearer_token(request))
    if caller is None:
        return json_response({"ready": report["ready"]}, status)
    return json_response(report, status)


@router.get(
    "/metrics",
    summary="Metrics in the Prometheus text format (every worker's)",
    response_model=None,
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "The Prometheus text exposition format 0.0.4 (see the README's "
            "Observability section for the metrics and their labels).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **{status: AUTH_RESPONSES[status] for status in (401, 429)},
    },
)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Request latency, sessions and providers, fallbacks, flag evaluation, stream
    writes, the spool, outcome events, Redis errors, auth failures; merged over the
    workers of `voxroute serve --workers N`. Open, unless
    `VOXROUTE_METRICS_REQUIRE_KEY` asks for a key (any role)."""
    if runtime.settings.metrics_require_key:
        await authenticate(request)
    return Response(exposition(), media_type=CONTENT_TYPE)
