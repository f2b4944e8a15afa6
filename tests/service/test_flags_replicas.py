"""Two voxroute processes (uvicorn subprocesses) on one real Redis: a change made
through one is live on the other within a second (pub/sub, not the periodic
re-read: that is set to 30 s here); stale writes are 409; an invalid set is
refused and both keep serving the old one; history and rollback read the audit."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faults import VoxrouteProcess

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(120)]
STT = "stt-provider"
ALICE = {"authorization": "Bearer alice-token"}
BOB = {"authorization": "Bearer bob-token"}
EVEN = {"deepgram-nova-3": 50, "assemblyai-universal": 50}
RAMP = {"deepgram-nova-3": 80, "assemblyai-universal": 20}
_ids = itertools.count()


@pytest.fixture
def replicas(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[tuple[str, str]]:
    """The URLs of two voxroute processes sharing one Redis and key prefix."""
    servers = []
    try:
        for name in ("a", "b"):
            env = {
                "VOXROUTE_REDIS_URL": redis_url,
                "VOXROUTE_KEY_PREFIX": prefix,
                "VOXROUTE_DATA_DIR": str(tmp_path / name),
                "VOXROUTE_ADMIN_KEYS": "alice:alice-token,bob:bob-token",
                "VOXROUTE_FLAG_SYNC_INTERVAL_S": "30",
            }
            servers.append(VoxrouteProcess(env).start(tmp_path / f"{name}.log"))
        yield servers[0].url, servers[1].url
    finally:
        for server in servers:
            server.stop()


def _stt(url: str) -> dict[str, Any]:
    """The stt assignment of a new session created on `url`."""
    body = {
        "session_id": f"call-{time.time_ns()}-{next(_ids)}",
        "tenant_id": "acme",
        "region": "eu",
    }
    response = httpx.post(f"{url}/v1/sessions", json=body, headers=ALICE)
    assert response.status_code == 201, response.text
    (stt,) = [a for a in response.json()["assignments"] if a["flag_key"] == STT]
    return dict(stt)


def _weights(url: str) -> dict[str, int]:
    weights: dict[str, int] = _stt(url)["split"]["weights"]
    return weights


def _seconds_until(check: Any, limit_s: float = 5.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit_s:
            raise AssertionError(f"not seen within {limit_s}s")
        time.sleep(0.02)
    return time.monotonic() - start


def _patch(url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return httpx.patch(f"{url}/v1/flags/{STT}", json=body, headers=headers)


def test_a_weight_change_through_one_is_used_by_the_other_within_a_second(
    replicas: tuple[str, str],
) -> None:
    a, b = replicas
    assert _weights(a) == _weights(b) == EVEN
    response = _patch(a, {"weights": RAMP, "reason": "ramp down assemblyai"}, ALICE)
    assert response.status_code == 200, response.text
    assert _weights(a) == RAMP  # the writer serves it before it answers
    assert _seconds_until(lambda: _weights(b) == RAMP) < 1.0
    assert _stt(b)["flag_version"].startswith("2:")


def test_a_stale_write_is_refused_with_409(replicas: tuple[str, str]) -> None:
    a, b = replicas
    got = httpx.get(f"{a}/v1/flags/{STT}", headers=ALICE)
    assert _patch(b, {"weights": RAMP, "reason": "bob ramps"}, BOB).status_code == 200
    stale = got.json()["definition"]
    stale["state"] = "DISABLED"
    headers = {**ALICE, "if-match": got.headers["etag"]}
    response = httpx.put(f"{a}/v1/flags/{STT}", json=stale, headers=headers, params={"reason": "x"})
    assert response.status_code == 409
    now = httpx.get(f"{b}/v1/flags/{STT}", headers=BOB)
    assert (now.headers["etag"], now.json()["definition"]["state"]) == ('"2"', "ENABLED")


def test_an_invalid_flag_set_is_refused_and_both_keep_serving_the_old_one(
    replicas: tuple[str, str],
) -> None:
    a, b = replicas
    flags = httpx.get(f"{a}/v1/flags", headers=ALICE).json()
    flag = httpx.get(f"{a}/v1/flags/{STT}", headers=ALICE).json()["definition"]
    flag["variants"]["assemblyai-universal"] = "assemblyai/no-such-model"
    flag["targeting"]["if"][3]["fractional"] = [
        ["deepgram-nova-3", 10],
        ["assemblyai-universal", 90],
    ]
    body = {"flag_set": {"flags": {STT: flag}}, "reason": "broken"}
    response = httpx.post(f"{b}/v1/flags", json=body, headers=BOB)
    assert response.status_code == 422
    assert response.json()["error"]["context"]["flag_key"] == STT
    time.sleep(0.3)
    for url in (a, b):
        assert _weights(url) == EVEN
        assert httpx.get(f"{url}/v1/flags", headers=ALICE).json() == flags
        assert httpx.get(f"{url}/readyz", headers=ALICE).json()["flag_store"]["set_version"] == 1


def test_history_shows_every_change_with_author_and_reason(replicas: tuple[str, str]) -> None:
    a, b = replicas
    assert _patch(a, {"weights": RAMP, "reason": "ramp down"}, ALICE).status_code == 200
    assert _patch(b, {"state": "DISABLED", "reason": "incident"}, BOB).status_code == 200
    entries = httpx.get(f"{b}/v1/flags/{STT}/history", headers=BOB).json()["entries"]
    assert [(e["new_version"], e["author"], e["reason"]) for e in entries] == [
        (3, "bob", "incident"),
        (2, "alice", "ramp down"),
        (1, "voxroute", entries[-1]["reason"]),
    ]
    assert list(entries[1]["weights"].values()) == [RAMP]


def test_rollback_restores_an_earlier_version_exactly(replicas: tuple[str, str]) -> None:
    a, b = replicas
    original = httpx.get(f"{a}/v1/flags/{STT}", headers=ALICE).json()["definition"]
    assert _patch(a, {"weights": RAMP, "reason": "ramp"}, ALICE).status_code == 200
    assert (
        _patch(a, {"defaultVariant": "openai-transcribe", "reason": "x"}, ALICE).status_code == 200
    )
    rollback = {"to_version": 1, "reason": "back to the start"}
    response = httpx.post(f"{b}/v1/flags/{STT}/rollback", json=rollback, headers=BOB)
    assert response.status_code == 200, response.text
    restored = httpx.get(f"{a}/v1/flags/{STT}", headers=ALICE)
    assert (restored.headers["etag"], restored.json()["definition"]) == ('"4"', original)
    assert _seconds_until(lambda: _weights(a) == EVEN) < 1.0
