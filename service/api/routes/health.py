"""Liveness, readiness and counters."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from experiments.telemetry import render_prometheus

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
    responses={
        503: {
            "description": "Not ready: the same report, saying what is missing.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def readyz(runtime: RuntimeDep) -> Response:
    report = await runtime.readiness()
    return json_response(report, 200 if report["ready"] else 503)


@router.get(
    "/metrics",
    summary="Counters in the Prometheus text format",
    response_model=None,
    response_class=PlainTextResponse,
)
async def metrics() -> Response:
    return PlainTextResponse(render_prometheus())
