"""GET /v1/experiments and GET /v1/experiments/{flag_key}/results."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from analysis.errors import MIN_ALPHA
from experiments.experiment_index import list_experiments

from ...analysis_jobs import AnalysisOptions, run_analysis
from ...auth import ReaderDep
from ...responses import json_bytes
from ..deps import RuntimeDep
from ..schemas import AUTH_RESPONSES, ErrorOut

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


class ResultsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment: str | None = Field(default=None, description="Break effects down by this column")
    sequential: bool = Field(default=False, description="Always-valid (sequential) intervals")
    cuped: bool = Field(default=False, description="CUPED with the tenant's pre-period mean")
    correction: Literal["holm", "bh"] = "holm"
    period: Literal["split", "latest", "pooled"] = "split"
    control: str | None = Field(default=None, description="Default: the flag's `control`")
    alpha: float = Field(default=0.05, ge=MIN_ALPHA, lt=1)


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
    flag_key: str, query: Annotated[ResultsQuery, Query()], runtime: RuntimeDep, caller: ReaderDep
) -> Response:
    """Reads the streams and analyses them off the event loop; the body follows
    `docs/analysis-result.schema.json` (see docs/analysis.md)."""
    options = AnalysisOptions(
        query.segment, query.sequential, query.cuped, query.correction, query.period,
        query.control, query.alpha,
    )  # fmt: skip
    settings = runtime.settings
    result = await asyncio.to_thread(
        run_analysis,
        runtime.redis_url,
        runtime.provider.compiled,
        flag_key,
        runtime.outcomes.registry,
        options,
        key_prefix=settings.key_prefix,
        shards=settings.shards,
        pause_gc=False,
    )
    return json_bytes(result.to_json().encode())
