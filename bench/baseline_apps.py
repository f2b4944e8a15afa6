"""The two baselines of the session benchmark, served the same way as voxroute.

Both tune the cyclic GC at start-up as voxroute does (`service.main.tune_gc`).

- `bare_app`: parses the same body with the same pydantic model and returns a
  constant route (the cost of FastAPI + uvicorn + JSON).
- `durable_app`: the same plus one group-committed XADD per request to a Redis
  stream (concurrent requests share one pipelined round trip): the floor that
  any service which records every session before answering pays.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI, Response

from service.api.schemas import SessionIn
from service.main import tune_gc

CONSTANT_ROUTE = orjson.dumps(
    {
        "route": {
            "mode": "pipeline",
            "stt": {"id": "deepgram/nova-3", "vendor": "deepgram", "model": "nova-3", "config": {}},
            "tts": {"id": "elevenlabs/eleven_flash_v2_5", "vendor": "elevenlabs", "config": {}},
            "s2s": None,
            "vad": {"id": "silero", "vendor": "silero", "model": "silero-vad", "config": {}},
            "turn_detection": {"id": "heuristic", "vendor": "voxroute", "config": {}},
        }
    }
)


@asynccontextmanager
async def _tuned(app: FastAPI) -> AsyncIterator[None]:
    """Served the same way as voxroute, GC tuning included."""
    tune_gc()
    yield


def bare_app() -> FastAPI:
    app = FastAPI(lifespan=_tuned)

    @app.post("/v1/sessions", status_code=201)
    async def create(body: SessionIn) -> Response:
        return Response(CONSTANT_ROUTE, status_code=201, media_type="application/json")

    return app


class GroupCommitter:
    """Queue XADDs; one flusher sends everything queued in one pipeline."""

    def __init__(self, client: aioredis.Redis, stream: str) -> None:
        self.client = client
        self.stream = stream
        self.queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self.wakeup = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def append(self, payload: bytes) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((payload, future))
        self.wakeup.set()
        await future

    async def _run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            batch, self.queue = self.queue, []
            pipe = self.client.pipeline(transaction=False)
            for payload, _ in batch:
                pipe.xadd(self.stream, {b"e": payload})
            await pipe.execute()
            for _, future in batch:
                future.set_result(None)


def durable_app() -> FastAPI:
    url = os.environ["BENCH_REDIS_URL"]
    stream = os.environ.get("BENCH_STREAM", "bench:{s0}:baseline")
    state: dict[str, GroupCommitter] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(url)
        state["log"] = GroupCommitter(client, stream)
        tune_gc()
        yield
        state["log"].task.cancel()
        await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/sessions", status_code=201)
    async def create(body: SessionIn) -> Response:
        await state["log"].append(body.model_dump_json().encode())
        return Response(CONSTANT_ROUTE, status_code=201, media_type="application/json")

    return app
