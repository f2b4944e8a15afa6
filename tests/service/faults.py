"""Real processes for fault tests: a voxroute server under uvicorn on a free
loopback port (the redis-server is `redis_process.RedisProcess`), and HTTP load."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis_process import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class VoxrouteProcess:
    """`uvicorn service.main:create_app` with the given VOXROUTE_* environment."""

    env: Mapping[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory",
                "--port", str(self.port), "--no-access-log", "--log-level", "warning"]  # fmt: skip

    def start(self, log: Path) -> VoxrouteProcess:
        self.log = log
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(), env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        wait_for(self._listens, f"voxroute on {self.port} (log: {log})", timeout_s=60)
        return self

    def _listens(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"voxroute exited; log: {self.log and self.log.read_text()}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@dataclass
class VoxrouteServe(VoxrouteProcess):
    """`voxroute --log-level info serve`: uvicorn as the CLI runs it (voxroute's HTTP
    protocol with its edge limits), every log line in the log file."""

    def command(self) -> list[str]:
        script = Path(sys.executable).with_name("voxroute")
        return [str(script), "--log-level", "info", "serve", "--port", str(self.port)]


@dataclass
class Accepted:
    """What the server accepted: session ids (200/201) and outcome event ids (202)."""

    sessions: set[str] = field(default_factory=set)
    outcomes: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    outcome_statuses: Counter[str] = field(default_factory=Counter)


async def post_until_taken(
    http: httpx.AsyncClient, path: str, body: dict[str, object], acc: Accepted
) -> httpx.Response:
    """POST until answered with something other than 503 (spool full)."""
    for _ in range(200):
        response = await http.post(path, json=body)
        acc.statuses[response.status_code] += 1
        if response.status_code != 503:
            return response
        await asyncio.sleep(float(response.headers.get("retry-after", "0.1")) / 10)
    raise AssertionError(f"{path} still 503 after 200 tries")


@dataclass
class Load:
    """`clients` concurrent HTTP clients: each session created, then its outcomes."""

    base_url: str
    sessions: int
    clients: int
    outcomes_per_session: int
    accepted: Accepted
    done: int = 0

    def start(self) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(self._client(range(c, self.sessions, self.clients)))
            for c in range(self.clients)
        ]

    async def reached(self, fraction: float) -> None:
        while self.done < self.sessions * fraction:
            await asyncio.sleep(0.02)

    async def _client(self, indices: range) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            for index in indices:
                await self._one_session(http, index)
                self.done += 1

    async def _one_session(self, http: httpx.AsyncClient, index: int) -> None:
        acc = self.accepted
        session_id = f"load-{index:05d}"
        body = {"session_id": session_id, "tenant_id": f"t{index % 13}", "region": "eu",
                "features": {"s2s": index % 4 == 0}}  # fmt: skip
        response = await post_until_taken(http, "/v1/sessions", body, acc)
        assert response.status_code in {200, 201}, response.text
        acc.sessions.add(session_id)
        for turn in range(self.outcomes_per_session):
            event_id = f"{session_id}-e{turn}"
            outcome = {"event_id": event_id, "turn": turn, "metrics": {"stt_ttfb_ms": 100.0 + turn}}
            path = f"/v1/sessions/{session_id}/outcomes"
            response = await post_until_taken(http, path, outcome, acc)
            assert response.status_code == 202, response.text
            acc.outcomes.add(event_id)
            acc.outcome_statuses[response.json()["status"]] += 1
