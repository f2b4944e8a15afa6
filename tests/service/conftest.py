"""An app on a real Redis with a key prefix of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings


@pytest.fixture
def settings(redis_url: str, prefix: str, tmp_path: Path) -> Settings:
    """The test's own key prefix and local folder (the spool lives there)."""
    return Settings(redis_url=redis_url, key_prefix=prefix, data_dir=tmp_path / "voxroute")


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
