"""`GET /metrics` in the Prometheus text format, from one process or from every
worker of `voxroute serve --workers N`.

Several workers use prometheus-client's multiprocess mode: each process keeps
its samples in memory-mapped files in the folder named by
`PROMETHEUS_MULTIPROC_DIR`, and a scrape (served by any worker) merges the
files of every process. The variable must be set before prometheus-client is
imported, so `voxroute serve` sets it, in a folder under the data dir emptied
first, before it starts the workers (`prepare_multiprocess_dir`). Counters and
histograms of a worker that exited stay counted; its `live*` gauges (spool
depth, workers) are dropped when it stops (`worker_stopped`) and, for a worker
that died without stopping, when the next worker starts (`worker_started`).
With one process the normal registry is used.
See https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from experiments.telemetry import WORKERS

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MULTIPROC_FOLDER = "prometheus"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The classic text format (0.0.4), which every Prometheus-compatible scraper reads."""
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def multiprocess_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The multiprocess folder in use, or None for a single process."""
    value = environ.get(MULTIPROC_ENV) or environ.get(MULTIPROC_ENV.lower())
    return Path(value) if value else None


def exposition(environ: Mapping[str, str] = os.environ) -> bytes:
    """Every voxroute metric in the Prometheus text format (every worker's, merged)."""
    directory = multiprocess_dir(environ)
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """An empty `data_dir/prometheus` folder for the workers' metric files: the
    files of an earlier run would be merged into this run's samples."""
    directory = data_dir / MULTIPROC_FOLDER
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def worker_started(environ: Mapping[str, str] = os.environ) -> None:
    """Count this process as a serving worker; in multiprocess mode, first drop
    the live gauges of workers that died without stopping (a restarted worker)."""
    directory = multiprocess_dir(environ)
    if directory is not None:
        for pid in _dead_pids(directory):
            _mark_dead(pid, directory)
    WORKERS.set(1)


def worker_stopped(environ: Mapping[str, str] = os.environ) -> None:
    """The worker stops serving: its live gauges no longer count."""
    WORKERS.set(0)
    directory = multiprocess_dir(environ)
    if directory is not None:
        _mark_dead(os.getpid(), directory)


def _mark_dead(pid: int, directory: Path) -> None:
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _dead_pids(directory: Path) -> set[int]:
    pids = set()
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if match is not None and not _alive(int(match[1])):
            pids.add(int(match[1]))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
