"""Liveness, readiness and counters."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from experiments.telemetry import render_prometheus

from ...auth import bearer_token
from ...responses import json_response
from ..deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process serves")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready or not; with an API key, also Redis, spool, flags, catalog, auth mode",
    response_model=None,
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


@router.get("/metrics", summary="Counters in the Prometheus text format", response_model=None)
async def metrics() -> Response:
    return PlainTextResponse(render_prometheus())
