"""The `voxroute` command: check, route, and serve refusing bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from service.settings import DEFAULTS_DIR


def _bad_flags(tmp_path: Path) -> Path:
    flags = json.loads((DEFAULTS_DIR / "flags.json").read_text())
    flags["flags"]["stt-provider"]["variants"]["assemblyai-universal"] = "nobody/none"
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(flags))
    return path


def test_check_accepts_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert "ok: 6 flags" in capsys.readouterr().out


def test_check_names_the_file_flag_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _bad_flags(tmp_path)
    assert main(["check", "--flags", str(bad)]) == 2
    err = capsys.readouterr().err
    for needle in (str(bad), "'stt-provider'", "/variants/assemblyai-universal", "nobody/none"):
        assert needle in err


def test_serve_refuses_to_start_on_a_bad_flag_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXROUTE_FLAGS_PATH", str(_bad_flags(tmp_path)))
    monkeypatch.setenv("VOXROUTE_DATA_DIR", str(tmp_path / "data"))
    assert main(["serve", "--port", "0"]) == 2
    assert "unknown provider id 'nobody/none'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_route_prints_the_route_without_writing(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["route", "--session-id", "call-1", "--tenant-id", "globex", "--region", "us",
         "--feature", "s2s=false"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["route"]["stt"]["id"] == "openai/gpt-4o-transcribe"


def test_route_rejects_a_bad_region(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "--session-id", "c", "--tenant-id", "t", "--region", "mars"]) == 2
    assert "region" in capsys.readouterr().err


def test_the_readme_lists_every_setting() -> None:
    from service.settings import Settings

    readme = (DEFAULTS_DIR.parents[1] / "README.md").read_text()
    settings = readme[readme.index("## Settings") : readme.index("## Layout")]
    missing = [n for n in Settings.model_fields if f"`VOXROUTE_{n.upper()}`" not in settings]
    assert missing == []


def test_serve_refuses_to_start_on_a_bad_metric_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text("metrics:\n  mos:\n    minimum: high\n")
    monkeypatch.setenv("VOXROUTE_METRICS_PATH", str(metrics))
    monkeypatch.setenv("VOXROUTE_DATA_DIR", str(tmp_path / "data"))
    assert main(["serve", "--port", "0"]) == 2
    assert "mos" in capsys.readouterr().err
