"""Dependencies of the route handlers, as `Annotated` aliases.

They are `async def` so that FastAPI calls them on the event loop, not in a thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from experiments.outcomes import OutcomeService
from experiments.sessions import SessionService

from ..runtime import Runtime
from ..settings import Settings, get_settings


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_sessions(request: Request) -> SessionService:
    runtime: Runtime = request.app.state.runtime
    return runtime.sessions


async def get_outcomes(request: Request) -> OutcomeService:
    runtime: Runtime = request.app.state.runtime
    return runtime.outcomes


SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]
OutcomesDep = Annotated[OutcomeService, Depends(get_outcomes)]
