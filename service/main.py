"""Builds the FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError

from .api.routes import experiments, flags, health, outcomes, sessions
from .errors import install_error_handlers
from .middleware import BodySizeLimit, BodyTooLargeError
from .observability.http_metrics import RequestMetrics
from .observability.prometheus import worker_started, worker_stopped
from .observability.tracing import RequestTracing, Tracing, annotate_session
from .responses import json_response
from .runtime import Runtime
from .settings import Settings, get_settings

DESCRIPTION = """
voxroute picks the speech providers of every voice session with OpenFeature
flags (flagd format), pins the route for the session's life, records every
assignment on Redis streams for cohort analysis, and takes each session's
measurements (latency per turn, quality, cost) checked against a metric registry.
"""


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    *,
    tracing: Tracing | None = None,
) -> FastAPI:
    """The app; with `runtime` given (tests), it is used as it is and not stopped.

    `tracing` defaults to `Tracing.from_environment()` (None, nothing installed,
    unless an OTLP endpoint is set); tests pass one with an in-memory exporter."""
    settings = settings or get_settings()
    tracing = tracing or Tracing.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        started = await Runtime.start(settings)
        if tracing is not None:
            instrument(started, tracing)
        app.state.runtime = started
        worker_started()
        if settings.gc_tuned:
            tune_gc()
        try:
            yield
        finally:
            await started.stop()
            if tracing is not None:
                tracing.shutdown()
            worker_stopped()

    app = FastAPI(title="voxroute", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    if runtime is not None:
        app.state.runtime = runtime
        if tracing is not None:
            instrument(runtime, tracing)

    app.state.settings = settings
    app.state.tracing = tracing
    sessions.register_hot_path(app)  # ahead of the routers: matched first
    outcomes.register_hot_path(app)
    app.include_router(sessions.router)
    app.include_router(outcomes.router)
    app.include_router(health.router)
    app.include_router(flags.router)
    app.include_router(experiments.router)
    install_error_handlers(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(BodyTooLargeError, _too_large)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        path_limits={"/v1/outcomes": settings.batch_max_body_bytes},
    )
    app.add_middleware(RequestMetrics)  # outside the body limit: 413s are timed too
    if tracing is not None:
        app.add_middleware(RequestTracing, tracer=tracing.tracer)  # outermost
    return app


def instrument(runtime: Runtime, tracing: Tracing) -> None:
    """Trace the runtime's routing: the flag evaluations (a hook on its flag client,
    which then evaluates through the OpenFeature SDK) and each session's route."""
    if runtime.flag_client is not None:
        runtime.flag_client.client.add_hooks([tracing.flag_hook])
    runtime.sessions.on_routed = annotate_session


GC_THRESHOLDS = (50_000, 50, 1000)


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the request path.

    Everything built at start-up (modules, flags, catalog) lives as long as the
    process: `gc.freeze` moves it out of the collector's scans. The request path
    allocates many short-lived containers but makes almost no reference cycles,
    so collections can be rarer: with CPython's default thresholds (700, 10, 10)
    the full collections over the long-lived caches stalled requests (the p99 of
    bench/bench_sessions.py; the figures are in the README)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
    errors = [
        {"field": ".".join(str(part) for part in err["loc"]), "problem": err["msg"]}
        for err in exc.errors()
    ]
    message = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
    body = {"error": {"code": "invalid_input", "message": message, "context": {"errors": errors}}}
    return json_response(body, 422)


async def _too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLargeError)  # noqa: S101 - registered for this type only
    message = f"request body: larger than {exc.max_bytes} bytes"
    body = {"error": {"code": "payload_too_large", "message": message, "context": {}}}
    return json_response(body, 413)
