"""The query parameters of `GET /v1/experiments/{flag_key}/results`, derived from
`analysis.spec`: one parameter per `Option` of `AnalysisSpec`, with its choices
and limits, validated by FastAPI and handed to the route as an `AnalysisSpec`."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field, create_model

from analysis.spec import AnalysisSpec, Option, options


def _parameter(option: Option) -> tuple[Any, Any]:
    kind: Any = option.kind
    default = option.default
    if issubclass(kind, Enum):
        kind, default = Literal[tuple(member.value for member in kind)], default.value
    elif default is None:
        kind = kind | None
    description = option.help or None
    return kind, Field(
        default=default, description=description, gt=option.gt, lt=option.lt, ge=option.ge
    )


if TYPE_CHECKING:
    ResultsQuery = BaseModel
else:
    ResultsQuery = create_model(
        "ResultsQuery",
        __config__=ConfigDict(extra="forbid"),
        **{option.name: _parameter(option) for option in options()},
    )


async def analysis_spec(query: Annotated[ResultsQuery, Query()]) -> AnalysisSpec:
    """The query string as an `AnalysisSpec`."""
    return AnalysisSpec.from_options(query.model_dump())


AnalysisSpecDep = Annotated[AnalysisSpec, Depends(analysis_spec)]
