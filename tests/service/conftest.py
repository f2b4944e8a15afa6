"""An app on a real Redis with a key prefix of the test's own; the tally of the
schemathesis run (test_openapi_conformance.py), shown in pytest's summary."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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


@dataclass
class FuzzTally:
    """What the schemathesis tests sent: operations (with their key set), generated
    requests, stateful steps, and the wall time from the first to the last."""

    operations: set[str] = field(default_factory=set)
    key_sets: set[str] = field(default_factory=set)
    requests: int = 0
    stateful_runs: int = 0
    stateful_steps: int = 0
    started: float | None = None
    ended: float | None = None

    def record(self, operation: str, key_set: str, *, stateful: bool = False) -> None:
        now = time.monotonic()
        self.started = now if self.started is None else self.started
        self.ended = now
        self.operations.add(operation)
        self.key_sets.add(key_set)
        if stateful:
            self.stateful_steps += 1
        else:
            self.requests += 1

    def summary(self) -> str:
        seconds = (self.ended or 0.0) - (self.started or 0.0)
        return (
            f"{len(self.operations)} operations x {len(self.key_sets)} key sets "
            f"({', '.join(sorted(self.key_sets))}): {self.requests} generated requests, "
            f"{self.stateful_runs} stateful runs with {self.stateful_steps} linked calls, "
            f"{seconds:.1f} s"
        )


FUZZ_TALLY = pytest.StashKey[FuzzTally]()


@pytest.fixture(scope="session")
def fuzz_tally(pytestconfig: pytest.Config) -> FuzzTally:
    return pytestconfig.stash.setdefault(FUZZ_TALLY, FuzzTally())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tally = terminalreporter.config.stash.get(FUZZ_TALLY, None)
    if tally is not None and tally.started is not None:
        terminalreporter.write_sep("-", "schemathesis")
        terminalreporter.write_line(tally.summary())
