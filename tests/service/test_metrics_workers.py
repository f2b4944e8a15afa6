"""Metrics of several worker processes (prometheus-client's multiprocess mode):
processes writing to one folder, merged by one scrape; `voxroute serve --workers 2`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis_process import free_port

from service.observability.prometheus import (
    MULTIPROC_ENV,
    exposition,
    prepare_multiprocess_dir,
    worker_started,
)

ROOT = Path(__file__).resolve().parents[2]
VOXROUTE = Path(sys.executable).parent / "voxroute"
WORKER = """
import sys
from experiments.telemetry import SESSIONS_CREATED
from service.observability.prometheus import worker_started, worker_stopped
worker_started()
SESSIONS_CREATED.labels("eu", "pipeline").inc(3)
if sys.argv[1] == "stops":
    worker_stopped()
"""


def values(text: str, name: str) -> list[float]:
    return [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def run_worker(folder: Path, how: str) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(folder), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", WORKER, how], env=env, cwd=ROOT, check=True)


def test_the_folder_is_emptied_before_the_workers_start(tmp_path: Path) -> None:
    folder = prepare_multiprocess_dir(tmp_path)
    (folder / "counter_123.db").write_bytes(b"an earlier run")
    assert prepare_multiprocess_dir(tmp_path) == folder
    assert list(folder.iterdir()) == []


def test_one_scrape_merges_the_samples_of_every_process(tmp_path: Path) -> None:
    folder = prepare_multiprocess_dir(tmp_path)
    run_worker(folder, "stops")
    run_worker(folder, "runs")
    text = exposition({MULTIPROC_ENV: str(folder)}).decode()
    assert values(text, "voxroute_sessions_created_total") == [6.0]
    assert values(text, "voxroute_workers") == [1.0]  # the stopped one no longer counts


def test_a_starting_worker_drops_the_gauges_of_workers_that_died(tmp_path: Path) -> None:
    folder = prepare_multiprocess_dir(tmp_path)
    run_worker(folder, "dies")  # exits without stopping: its live gauge file stays
    assert list(folder.glob("gauge_livesum_*.db")) != []
    worker_started({MULTIPROC_ENV: str(folder)})
    assert list(folder.glob("gauge_livesum_*.db")) == []
    assert values(exposition({MULTIPROC_ENV: str(folder)}).decode(), "voxroute_workers") == []


def scrape_until_both_workers_answer(
    server: subprocess.Popen[bytes], url: str, deadline_s: float
) -> str:
    """Scrape (a new connection each time) until the merged samples show two live
    workers; each scrape is counted once it is answered, so scrape k sees k - 1."""
    deadline = time.monotonic() + deadline_s
    scrapes = 0
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"serve exited with {server.returncode}")
        try:
            text = httpx.get(f"{url}/metrics", headers={"connection": "close"}).text
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        scrapes += 1
        counted = values(text, "voxroute_http_request_duration_seconds_count")
        # scrape 1 sees no earlier scrape (an empty sum would match trivially):
        # wait until earlier scrapes, answered by either worker, are all counted
        both_live = values(text, "voxroute_workers") == [2.0]
        if scrapes >= 3 and both_live and sum(counted) == scrapes - 1:
            return text
        time.sleep(0.1)
    raise TimeoutError(f"two workers did not show in {deadline_s}s of {scrapes} scrapes")


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(240)
def test_serve_with_two_workers_merges_both_workers_metrics(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VOXROUTE_REDIS_URL": redis_url,
        "VOXROUTE_KEY_PREFIX": prefix,
        "VOXROUTE_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop(MULTIPROC_ENV, None)
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [VOXROUTE, "--log-level", "warning", "serve", "--port", str(port), "--workers", "2"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        text = scrape_until_both_workers_answer(server, f"http://127.0.0.1:{port}", 150)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert "voxroute_http_request_duration_seconds_count" in text
    folder = tmp_path / "data" / "prometheus"
    assert list(folder.glob("counter_*.db")) != []
    assert list(folder.glob("gauge_livesum_*.db")) == []  # both stopped: marked dead
