"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from ...observability.prometheus import CONTENT_TYPE, exposition
from ...responses import json_response
from ..deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process serves")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Redis state, loaded flags and catalog; 503 when not ready",
    response_model=None,
)
async def readyz(runtime: RuntimeDep) -> Response:
    report = await runtime.readiness()
    return json_response(report, 200 if report["ready"] else 503)


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
        }
    },
)
async def metrics() -> Response:
    """Request latency, sessions and providers, fallbacks, flag evaluation, stream
    writes, the spool, outcome events, Redis errors, auth failures; merged over the
    workers of `voxroute serve --workers N`."""
    return Response(exposition(), media_type=CONTENT_TYPE)
