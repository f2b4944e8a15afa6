"""`voxroute flags ...` against a running server (uvicorn subprocess on a real Redis)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from faults import VoxrouteProcess

from experiments.flags import DEFAULT_FLAGS_PATH
from service.cli import main

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(120)]
TOKEN = "cli-admin-token"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module; each test changes flags of its own."""
    prefix = f"vrtest:{uuid.uuid4().hex}"
    folder = tmp_path_factory.mktemp("cli")
    env = {
        "VOXROUTE_REDIS_URL": redis_url,
        "VOXROUTE_KEY_PREFIX": prefix,
        "VOXROUTE_DATA_DIR": str(folder / "data"),
        "VOXROUTE_ADMIN_TOKEN": TOKEN,
    }
    process = VoxrouteProcess(env).start(folder / "voxroute.log")
    try:
        yield process.url
    finally:
        process.stop()
        with redis.Redis.from_url(redis_url) as conn:
            keys = list(conn.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                conn.delete(*keys)


@pytest.fixture
def flags(server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """`flags("list")` runs `voxroute flags list --url <server>`: (status, stdout, stderr)."""
    monkeypatch.setenv("VOXROUTE_ADMIN_TOKEN", TOKEN)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["flags", args[0], "--url", server, *args[1:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_list_prints_a_table_of_flags(flags: Run) -> None:
    code, out, _ = flags("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("flag set version ")
    assert lines[1].split() == ["FLAG", "VERSION", "STATE", "DEFAULT", "SPLITS"]
    (vad,) = [line for line in lines if line.startswith("vad-provider")]
    assert vad.split()[2:4] == ["ENABLED", "silero"]


def test_show_prints_variants_splits_and_targeting(flags: Run) -> None:
    code, out, _ = flags("show", "stt-provider")
    assert code == 0
    assert out.startswith("flag stt-provider  version ")
    assert "VARIANT" in out
    assert "deepgram/nova-3" in out
    assert "SPLIT" in out
    assert "/targeting/if/3" in out
    assert "targeting:" in out


def test_set_weights_publishes_and_shows_the_change(flags: Run) -> None:
    code, out, _ = flags(
        "set-weights", "s2s-provider", "openai-realtime=60", "gemini-live=40", "--reason", "ramp"
    )
    assert code == 0, out
    assert out.startswith("published: flag set version ")
    row = next(line for line in out.splitlines() if line.startswith("s2s-provider"))
    assert row.split()[1:4] == ["1", "->", "2"]
    assert "/targeting/fractional/0/1: 80 -> 60" in out
    assert "warning: split s2s-provider/" in out
    _, shown, _ = flags("list")
    assert "openai-realtime=60 gemini-live=40" in shown


def test_a_dry_run_publishes_nothing(flags: Run) -> None:
    code, out, _ = flags("set-weights", "s2s-provider", "gemini-live=90", "--dry-run")
    assert code == 0
    assert out.startswith("dry run: nothing published")
    assert "note: publishing needs --reason (s2s-provider)" in out


def test_a_missing_reason_is_refused_with_the_servers_message(flags: Run) -> None:
    code, _, err = flags("set-weights", "s2s-provider", "gemini-live=90")
    assert code == 1
    assert "422: a reason is required: 's2s-provider' has a running split" in err


def test_disable_and_enable(flags: Run) -> None:
    code, out, _ = flags("disable", "tts-provider", "--reason", "cartesia incident")
    assert code == 0
    assert '/state: "ENABLED" -> "DISABLED"' in out
    assert "warning: disabled: new sessions get the catalog defaults (tts) at once" in out
    code, out, _ = flags("enable", "tts-provider", "--reason", "resolved")
    assert code == 0
    assert '/state: "DISABLED" -> "ENABLED"' in out


def test_history_lists_who_when_why(flags: Run) -> None:
    flags("set-weights", "tts-provider", "cartesia-sonic=30", "--reason", "less cartesia")
    code, out, _ = flags("history", "tts-provider")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["VERSION", "WHEN", "(UTC)", "WHO"]
    newest = lines[2].split()
    assert (newest[3], newest[4]) == ("admin", "patch")
    assert "less cartesia" in lines[2]
    assert "(first version)" in lines[-1]


def test_rollback_restores_a_version(flags: Run) -> None:
    flags("set-weights", "s2s-provider", "gemini-live=5", "--reason", "tiny")
    code, out, _ = flags("rollback", "s2s-provider", "--to-version", "1", "--reason", "undo")
    assert code == 0, out
    assert "/targeting/fractional/1/1: 5 -> 20" in out
    _, shown, _ = flags("show", "s2s-provider")
    assert "openai-realtime=80 gemini-live=20" in shown


def test_push_dry_run_and_a_broken_file(flags: Run, tmp_path: Path) -> None:
    data = json.loads(DEFAULT_FLAGS_PATH.read_text(encoding="utf-8"))
    data["flags"]["turn-detector"]["defaultVariant"] = "smart-turn"
    good = tmp_path / "flags.json"
    good.write_text(json.dumps(data), encoding="utf-8")
    code, out, _ = flags("push", str(good), "--dry-run", "--reason", "try")
    assert code == 0
    assert '/defaultVariant: "heuristic" -> "smart-turn"' in out
    data["flags"]["turn-detector"]["variants"]["smart-turn"] = "nobody/unknown"
    good.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = flags("push", str(good), "--reason", "try")
    assert code == 1
    assert "flag 'turn-detector', at /variants/smart-turn: unknown provider id" in err


def test_a_wrong_token_or_server_is_reported(flags: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXROUTE_ADMIN_TOKEN", "wrong")
    code, _, err = flags("list")
    expected = "voxroute flags: 401: unknown API key (revoked, or never made)"
    assert (code, err.strip()) == (1, expected)
    code = main(["flags", "list", "--url", "http://127.0.0.1:9"])
    assert code == 1
