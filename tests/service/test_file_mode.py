"""File mode: the flag file edited on disk serves within a second, without a restart;
a broken edit is refused and logged while the last good flags keep serving."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faults import VoxrouteProcess

from experiments.flags import DEFAULT_FLAGS_PATH
from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings, get_settings

pytestmark = pytest.mark.redis
STT = "stt-provider"
EVEN = {"deepgram-nova-3": 50, "assemblyai-universal": 50}
RAMP = {"deepgram-nova-3": 80, "assemblyai-universal": 20}
_ids = itertools.count()


def _shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFAULT_FLAGS_PATH.read_text(encoding="utf-8"))
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write the way an editor saves: a new file renamed over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
    temporary.replace(path)


def _with_weights(weights: dict[str, int]) -> dict[str, Any]:
    data = _shipped()
    data["flags"][STT]["targeting"]["if"][3]["fractional"] = [[v, w] for v, w in weights.items()]
    return data


@pytest.fixture
def served(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[tuple[str, Path, Path]]:
    """A server in file mode: its URL, its flag file and its log."""
    flags_path = tmp_path / "flags.json"
    _write(flags_path, _shipped())
    env = {
        "VOXROUTE_REDIS_URL": redis_url,
        "VOXROUTE_KEY_PREFIX": prefix,
        "VOXROUTE_DATA_DIR": str(tmp_path / "data"),
        "VOXROUTE_FLAGS_PATH": str(flags_path),
        "VOXROUTE_FLAG_STORE": "file",
    }
    log = tmp_path / "voxroute.log"
    server = VoxrouteProcess(env).start(log)
    try:
        yield server.url, flags_path, log
    finally:
        server.stop()


def _weights(url: str) -> dict[str, int]:
    body = {"session_id": f"call-{time.time_ns()}-{next(_ids)}", "tenant_id": "a", "region": "eu"}
    response = httpx.post(f"{url}/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    (stt,) = [a for a in response.json()["assignments"] if a["flag_key"] == STT]
    weights: dict[str, int] = stt["split"]["weights"]
    return weights


def _seconds_until(check: Any, limit_s: float = 5.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit_s:
            raise AssertionError(f"not seen within {limit_s}s")
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.slow
def test_an_edit_of_the_flag_file_changes_routing_within_a_second(
    served: tuple[str, Path, Path],
) -> None:
    url, flags_path, _ = served
    assert _weights(url) == EVEN
    _write(flags_path, _with_weights(RAMP))
    assert _seconds_until(lambda: _weights(url) == RAMP) < 1.0


@pytest.mark.slow
def test_a_broken_edit_is_refused_and_logged_and_the_last_good_flags_serve(
    served: tuple[str, Path, Path],
) -> None:
    url, flags_path, log = served
    _write(flags_path, _with_weights(RAMP))
    _seconds_until(lambda: _weights(url) == RAMP)
    broken = _with_weights({"deepgram-nova-3": 0, "assemblyai-universal": 0})
    _write(flags_path, broken)
    _seconds_until(lambda: "refused the edit" in log.read_text())
    text = log.read_text()
    assert str(flags_path) in text
    assert "flag 'stt-provider', at /targeting/if/3: the weights of split" in text
    assert _weights(url) == RAMP
    ready = httpx.get(f"{url}/readyz").json()["flag_store"]
    assert ready["mode"] == "file"
    assert "sum to 0" in ready["last_error"]
    _write(flags_path, _shipped())  # a good edit after a broken one serves again
    assert _seconds_until(lambda: _weights(url) == EVEN) < 1.0


@pytest.fixture
async def file_client(
    redis_url: str, prefix: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """In process: file mode with an admin token, so /v1/flags reads but takes no writes."""
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        data_dir=tmp_path / "voxroute",
        flag_store="file",
        admin_token="t",  # type: ignore[arg-type]
    )
    runtime = await Runtime.start(settings)
    app = create_app(settings, runtime)
    app.dependency_overrides[get_settings] = lambda: settings
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": "Bearer t"}
    async with httpx.AsyncClient(transport=transport, base_url="http://v", headers=headers) as c:
        yield c
    await runtime.stop()


async def test_file_mode_reads_flags_and_refuses_writes(file_client: httpx.AsyncClient) -> None:
    listed = (await file_client.get("/v1/flags")).json()
    assert listed["store"] == f"file {DEFAULT_FLAGS_PATH}"
    patch = {"weights": RAMP, "reason": "r"}
    response = await file_client.patch(f"/v1/flags/{STT}", json=patch)
    assert response.status_code == 409
    assert "VOXROUTE_FLAG_STORE=redis" in response.json()["error"]["message"]
    dry = await file_client.patch(f"/v1/flags/{STT}", json=patch, params={"dry_run": "true"})
    assert (dry.status_code, dry.json()["valid"]) == (200, True)
