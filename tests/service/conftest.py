"""An app on a real Redis with a key prefix of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return Settings(redis_url=redis_url, key_prefix=prefix)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    started = await Runtime.start(settings)
    yield started
    await started.stop()


@pytest.fixture
async def client(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://voxroute") as http:
        yield http
