"""GET /v1/experiments and GET /v1/experiments/{flag_key}/results."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response

from experiments.experiment_index import list_experiments

from ...analysis_jobs import run_analysis
from ...auth import ReaderDep
from ...responses import json_bytes
from ..analysis_query import AnalysisSpecDep
from ..deps import RuntimeDep
from ..schemas import AUTH_RESPONSES, ErrorOut

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


@router.get(
    "",
    summary="Flags with at least one fractional split, and their cohorts",
    responses={**AUTH_RESPONSES},
)
async def experiments(runtime: RuntimeDep, caller: ReaderDep) -> dict[str, Any]:
    views = list_experiments(runtime.provider.compiled)
    return {"experiments": [view.to_dict() for view in views]}


@router.get(
    "/{flag_key}/results",
    response_model=None,
    summary="Cohort comparison of an experiment (schema: docs/analysis-result.schema.json)",
    responses={**AUTH_RESPONSES, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def results(
    flag_key: str, spec: AnalysisSpecDep, runtime: RuntimeDep, caller: ReaderDep
) -> Response:
    """Reads the streams and analyses them off the event loop; the body follows
    `docs/analysis-result.schema.json` (see docs/analysis.md)."""
    settings = runtime.settings
    result = await asyncio.to_thread(
        run_analysis,
        runtime.redis_url,
        runtime.provider.compiled,
        flag_key,
        runtime.outcomes.registry,
        spec,
        key_prefix=settings.key_prefix,
        shards=settings.shards,
        pause_gc=False,
    )
    return json_bytes(result.to_json().encode())
