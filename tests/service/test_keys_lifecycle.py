"""The life of an API key across two real voxroute processes sharing one Redis:
made with the CLI, used at once on either replica, listed without its token,
revoked with the CLI and refused by the other replica within a second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from faults import VoxrouteProcess

from service.cli import main

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(120)]
SECRET = "test-secret-of-both-replicas"


@pytest.fixture
def env(
    redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    values = {
        "VOXROUTE_REDIS_URL": redis_url,
        "VOXROUTE_KEY_PREFIX": prefix,
        "VOXROUTE_KEY_SECRET": SECRET,
        "VOXROUTE_DATA_DIR": str(tmp_path / "cli"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def replicas(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    servers = []
    try:
        for name in ("a", "b"):
            process_env = {**env, "VOXROUTE_DATA_DIR": str(tmp_path / name)}
            servers.append(VoxrouteProcess(process_env).start(tmp_path / f"{name}.log"))
        yield servers[0].url, servers[1].url
    finally:
        for server in servers:
            server.stop()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _create_session(url: str, token: str, session_id: str) -> httpx.Response:
    body = {"session_id": session_id, "region": "eu"}
    return httpx.post(f"{url}/v1/sessions", json=body, headers={"authorization": f"Bearer {token}"})


def _refuses(url: str, token: str, session_id: str) -> bool:
    return _create_session(url, token, session_id).status_code == 401


def _until(condition: object, deadline_s: float) -> float | None:
    """Seconds until `condition()` held, or None when it did not within the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if condition():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def test_a_key_is_made_used_listed_and_revoked_across_replicas(
    replicas: tuple[str, str], capsys: pytest.CaptureFixture[str], redis_url: str, prefix: str
) -> None:
    a, b = replicas
    assert httpx.get(f"{a}/readyz").json()["auth"]["mode"] == "open"  # no key yet

    code, token, err = _cli(capsys, "keys", "create", "--role", "tenant", "--tenant", "acme",
                            "--name", "acme-runtime")  # fmt: skip
    token = token.strip()
    assert code == 0
    assert token.startswith("vrk_")
    assert "shown only now" in err

    assert _create_session(a, token, "call-1").status_code == 201  # at once, on both
    assert _create_session(b, token, "call-2").json()["tenant_id"] == "acme"
    # the first key ends development mode everywhere within a second
    assert _until(lambda: httpx.get(f"{b}/v1/sessions/call-1").status_code == 401, 1.0)

    code, listing, _ = _cli(capsys, "keys", "list", "--json")
    (row,) = [orjson.loads(line) for line in listing.splitlines()]
    assert (row["name"], row["role"], row["tenant_id"]) == ("acme-runtime", "tenant", "acme")
    assert token not in listing
    with redis.Redis.from_url(redis_url) as conn:  # only digests are stored
        stored = [conn.dump(k) or b"" for k in conn.scan_iter(match=f"{prefix}:{{keys}}:*")]
    assert stored
    assert all(token.encode() not in value for value in stored)

    code, _, err = _cli(capsys, "keys", "revoke", "acme-runtime")
    revoked_at = time.monotonic()
    assert code == 0
    for replica, session_id in ((b, "call-3"), (a, "call-4")):  # both, within 1 s of the revoke
        left = 1.0 - (time.monotonic() - revoked_at)
        refused = _until(partial(_refuses, replica, token, session_id), left)
        assert refused is not None, f"{replica} still took the revoked key 1 s after the revoke"
    # revoking the last key does not reopen the service (development mode is over)
    assert httpx.get(f"{a}/readyz").json() == {"ready": True}


def test_a_name_is_taken_once_and_a_tenant_key_needs_its_tenant(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(capsys, "keys", "create", "--role", "admin", "--name", "alice")[0] == 0
    code, out, err = _cli(capsys, "keys", "create", "--role", "reader", "--name", "alice")
    assert (code, out) == (2, "")
    assert "exists already" in err
    code, _, err = _cli(capsys, "keys", "create", "--role", "tenant", "--name", "t")
    assert code == 2
    assert "--tenant" in err
    code, _, err = _cli(capsys, "keys", "revoke", "nobody")
    assert code == 1
    assert "no key named 'nobody'" in err


def test_a_process_with_another_secret_is_refused(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cli(capsys, "keys", "create", "--role", "admin", "--name", "alice")[0] == 0
    monkeypatch.setenv("VOXROUTE_KEY_SECRET", "another secret")
    code, out, err = _cli(capsys, "keys", "create", "--role", "admin", "--name", "bob")
    assert (code, out) == (2, "")
    assert "VOXROUTE_KEY_SECRET differs" in err
    assert "another secret" not in err


def test_serve_require_auth_refuses_to_start_without_a_key(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXROUTE_REQUIRE_AUTH", "false")  # serve sets it; undone after the test
    code, _, err = _cli(capsys, "serve", "--require-auth", "--port", "1")
    assert code == 2
    assert "no API key is configured" in err
