"""Experiments and their results, on data created through the HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from analysis.errors import MIN_ALPHA
from analysis.spec import AnalysisSpec, options
from experiments.routing_config import load_routing_config
from service.analysis_cli import add_spec_arguments
from service.cli import main
from service.flag_management import current_flag_set
from service.main import create_app
from service.runtime import Runtime
from service.settings import Settings, get_settings

SESSIONS = 300


async def _populate(client: httpx.AsyncClient) -> None:
    rng = random.Random(7)
    events: list[dict[str, Any]] = []
    for i in range(SESSIONS):
        body = {"session_id": f"x-{i}", "tenant_id": f"t{i % 17}", "region": ("us", "eu")[i % 2]}
        doc = (await client.post("/v1/sessions", json=body)).json()
        stt = doc["route"]["stt"]["id"]
        slower = 40.0 if stt.startswith("deepgram") else 0.0
        for turn in range(3):
            metrics = {"stt_ttfb_ms": rng.gauss(200 + slower, 30), "e2e_latency_ms": 900.0}
            events.append({"session_id": f"x-{i}", "turn": turn, "metrics": metrics})
        events.append({"session_id": f"x-{i}", "metrics": {"task_success": rng.random() < 0.8}})
    for start in range(0, len(events), 1000):
        response = await client.post("/v1/outcomes", json={"events": events[start : start + 1000]})
        assert response.status_code == 202, response.text


async def test_experiments_lists_the_flags_with_a_split(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/experiments")).json()
    flags = {e["flag_key"]: e for e in body["experiments"]}
    assert set(flags) == {"stt-provider", "tts-provider", "s2s-provider"}
    assert flags["stt-provider"]["control"] == "deepgram-nova-3"
    assert flags["tts-provider"]["splits"][0]["bucket_unit"] == "tenant_id"


async def test_results_compare_the_cohorts(client: httpx.AsyncClient) -> None:
    await _populate(client)
    response = await client.get(
        "/v1/experiments/stt-provider/results", params={"segment": "region", "sequential": "true"}
    )
    assert response.status_code == 200, response.text
    (period,) = response.json()["periods"]
    (ttfb,) = [
        m for m in period["comparisons"]
        if m["metric"] == "stt_ttfb_ms" and m["variant"] == "assemblyai-universal"
    ]  # fmt: skip
    assert ttfb["control"] == "deepgram-nova-3"
    effect = ttfb["comparison"]["absolute"]
    assert effect["ci_low"] < -40 < effect["ci_high"]  # simulated: 40 ms faster
    assert ttfb["significant"] is True
    assert {s["level"] for s in period["segments"]} == {"us", "eu"}


async def test_results_of_a_flag_without_a_split_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/experiments/vad-provider/results")
    assert response.status_code == 404
    assert "not an experiment" in response.json()["error"]["message"]


async def test_results_reject_an_unknown_correction(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/experiments/stt-provider/results?correction=magic")
    assert response.status_code == 422
    assert "correction" in response.json()["error"]["message"]


async def test_results_reject_an_alpha_too_small_for_a_finite_interval(
    client: httpx.AsyncClient,
) -> None:
    await _populate(client)
    response = await client.get("/v1/experiments/stt-provider/results?alpha=5e-324")
    assert response.status_code == 422
    assert "alpha" in response.json()["error"]["message"]


@pytest.fixture
def cli_on_the_test_redis(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """`voxroute analyze` reads the test's Redis under the test's key prefix."""
    assert settings.redis_url is not None
    monkeypatch.setenv("VOXROUTE_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("VOXROUTE_KEY_PREFIX", settings.key_prefix)


@pytest.mark.usefixtures("cli_on_the_test_redis")
async def test_the_cli_analyze_prints_the_same_numbers_as_json(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await _populate(client)
    http = (await client.get("/v1/experiments/stt-provider/results")).json()
    assert main(["analyze", "stt-provider", "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli == http
    assert main(["analyze", "stt-provider"]) == 0
    assert "deepgram-nova-3" in capsys.readouterr().out


OPTIONS = {
    "segment": "region", "sequential": "true", "cuped": "true", "correction": "bh",
    "period": "pooled", "control": "assemblyai-universal", "alpha": "0.1",
}  # fmt: skip


@pytest.mark.usefixtures("cli_on_the_test_redis")
async def test_the_cli_and_the_api_read_every_option_alike(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await _populate(client)
    http = (await client.get("/v1/experiments/stt-provider/results", params=OPTIONS)).json()
    flags = ["--segment", "region", "--sequential", "--cuped", "--correction", "bh"]
    flags += ["--period", "pooled", "--control", "assemblyai-universal", "--alpha", "0.1"]
    assert main(["analyze", "stt-provider", "--format", "json", *flags]) == 0
    assert json.loads(capsys.readouterr().out) == http
    assert http["settings"] == {
        "alpha": 0.1, "correction": "bh", "sequential": True, "tuning_n": 5000.0, "cuped": True,
        "period": "pooled", "segment_by": ["region"], "power": 0.8,
    }  # fmt: skip
    assert http["periods"][0]["control"] == "assemblyai-universal"


async def test_the_query_parameters_are_the_options_of_the_spec(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    parameters = paths["/v1/experiments/{flag_key}/results"]["get"]["parameters"]
    query = {p["name"]: p["schema"] for p in parameters if p["in"] == "query"}
    assert list(query) == [option.name for option in options()]
    assert query["correction"]["enum"] == ["holm", "bh"]
    assert query["period"]["enum"] == ["split", "latest", "pooled"]
    assert (query["alpha"]["minimum"], query["alpha"]["exclusiveMaximum"]) == (MIN_ALPHA, 1)


def test_the_cli_flags_are_the_options_of_the_spec() -> None:
    parser = argparse.ArgumentParser()
    add_spec_arguments(parser)
    flags = ["--segment", "region", "--cuped", "--correction", "bh", "--alpha", "0.1"]
    spec = AnalysisSpec.from_options(vars(parser.parse_args(flags)))
    assert spec == AnalysisSpec(segment_by=("region",), cuped=True, correction="bh", alpha=0.1)  # type: ignore[arg-type]
    assert AnalysisSpec.from_options(vars(parser.parse_args([]))) == AnalysisSpec()


async def test_the_cli_analyze_reads_the_flags_from_the_redis_store(
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In redis mode the CLI analyses with the flag set the server serves, the stored
    one: after a change through /v1/flags it takes the new control from the stored
    flag's metadata, not the file's (`deepgram-nova-3`)."""
    token = "analyst-token"
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        data_dir=tmp_path / "voxroute",
        admin_token=token,  # type: ignore[arg-type]
    )
    runtime = await Runtime.start(settings)
    app = create_app(settings, runtime)
    app.dependency_overrides[get_settings] = lambda: settings
    admin = {"authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://voxroute", headers=admin
        ) as client:
            await _populate(client)
            got = await client.get("/v1/flags/stt-provider")
            document = got.json()
            assert document["definition"]["metadata"]["control"] == "deepgram-nova-3"
            document["definition"]["metadata"]["control"] = "assemblyai-universal"
            changed = await client.put(
                "/v1/flags/stt-provider",
                json=document,
                params={"reason": "AssemblyAI is the incumbent"},
                headers={**admin, "if-match": got.headers["etag"]},
            )
            assert changed.status_code == 200, changed.text
            http = (await client.get("/v1/experiments/stt-provider/results")).json()
    finally:
        await runtime.stop()
    monkeypatch.setenv("VOXROUTE_REDIS_URL", redis_url)
    monkeypatch.setenv("VOXROUTE_KEY_PREFIX", prefix)
    monkeypatch.setenv("VOXROUTE_ADMIN_TOKEN", token)  # VOXROUTE_FLAG_STORE=auto: redis
    code = await asyncio.to_thread(main, ["analyze", "stt-provider", "--format", "json"])
    assert code == 0
    cli = json.loads(capsys.readouterr().out)
    assert {period["control"] for period in cli["periods"]} == {"assemblyai-universal"}
    assert cli == http


def test_on_an_empty_redis_store_the_cli_takes_the_file_it_would_be_seeded_from(
    redis_url: str, prefix: str
) -> None:
    settings = Settings(redis_url=redis_url, key_prefix=prefix, flag_store="redis")
    config = load_routing_config(settings.flags_path, settings.catalog_path)
    assert current_flag_set(settings, redis_url, config) is config.flag_set
    with redis.Redis.from_url(redis_url) as conn:
        assert list(conn.scan_iter(match=f"{prefix}:*")) == []  # read only: nothing seeded
