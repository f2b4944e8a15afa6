"""POST /v1/sessions throughput and latency against two baselines, in one run.

Each server runs under uvicorn (one worker, uvloop, httptools, no access log; the
voxroute target with voxroute's httptools protocol, as `voxroute serve` runs it) on
loopback; `wrk` (one thread) sends unique session ids with the shipped flags'
contexts. Targets (interleaved over several rounds, each round starting with
another target; medians reported):

- bare:     FastAPI parses the same body and returns a constant route
- durable:  bare + one group-committed XADD per request
- voxroute: the real service (flags, catalog, session store, assignment stream)
  in development mode (no API key configured)
- voxroute+key: the same with 97 tenant keys, each request carrying its tenant's
  `Authorization: Bearer` token (what authentication costs)

Absolute numbers drift on shared machines: read the ratios.

    uv run python bench/bench_sessions.py [--rounds 3] [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from service.http_protocol import UVICORN_HTTP

ROOT = Path(__file__).resolve().parents[1]
WRK_SCRIPT = r"""
local counter = 0
local prefix = "%(prefix)s"
local regions = {"us", "eu", "ap"}
local auth_header = "%(auth_header)s"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local s2s = (counter %% 5 == 0) and "true" or "false"
  local tenant = counter %% 97
  local body = '{"session_id":"' .. prefix .. counter .. '","tenant_id":"tenant-' .. tenant ..
    '","region":"' .. regions[counter %% 3 + 1] .. '","features":{"s2s":' .. s2s ..
    '},"attributes":{"plan":"pro"}}'
  -- every target gets the same headers, so wrk does the same work for each; only
  -- voxroute+key's server knows the tokens (the others never read the header)
  local headers = {["Content-Type"] = "application/json",
                   [auth_header] = "Bearer bench-token-of-tenant-" .. tenant}
  return wrk.format(nil, "/v1/sessions", headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%%d,"duration_us":%%d,"errors":%%d,"p50_us":%%d,"p99_us":%%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
TARGETS = {
    "bare": "bench.baseline_apps:bare_app",
    "durable": "bench.baseline_apps:durable_app",
    "voxroute": "service.main:create_app",
    "voxroute+key": "service.main:create_app",
}
TENANT_KEYS = ",".join(f"tenant-{i}:bench-token-of-tenant-{i}" for i in range(97))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench needs redis-server on PATH")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return proc, f"redis://127.0.0.1:{port}/0"


def serve(target: str, redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_REDIS_URL": redis_url,
        "BENCH_STREAM": f"bench:{{s0}}:{uuid.uuid4().hex[:8]}",
        "VOXROUTE_REDIS_URL": redis_url,
        "VOXROUTE_KEY_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
        "VOXROUTE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    if target == "voxroute+key":
        env["VOXROUTE_TENANT_KEYS"] = TENANT_KEYS
        env["VOXROUTE_KEY_SECRET"] = uuid.uuid4().hex
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        TARGETS[target],
        "--factory",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        UVICORN_HTTP if target.startswith("voxroute") else "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    wait_port(port, proc)
    return proc, port


def run_wrk(port: int, seconds: float, connections: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    if raw["errors"]:
        raise RuntimeError(f"wrk saw {raw['errors']} errors:\n{out}")
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
    }


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the server process has used: per request, a figure
    that the machine's other load (wrk, Redis) moves less than throughput."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    target: str, redis_url: str, args: argparse.Namespace, workdir: Path
) -> dict[str, float]:
    proc, port = serve(target, redis_url)
    try:
        script = workdir / f"{target}-{uuid.uuid4().hex[:6]}.lua"
        header = "Authorization" if target == "voxroute+key" else "X-Bench-Token"
        prefix = f"{uuid.uuid4().hex[:10]}-"
        script.write_text(WRK_SCRIPT % {"prefix": prefix, "auth_header": header})
        run_wrk(port, 2, args.connections, script)  # warm-up
        cpu_before = process_cpu_s(proc.pid)
        result = run_wrk(port, args.duration, args.connections, script)
        requests = result["rps"] * args.duration
        result["cpu_us"] = (process_cpu_s(proc.pid) - cpu_before) / requests * 1e6
        return result
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
        names = list(TARGETS)
        for round_no in range(args.rounds):
            # each round starts with another target, and each target run has a Redis
            # of its own, so that none meets the state (memory, rehashing) of another
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                redis_proc, redis_url = start_redis(workdir)
                try:
                    results[name].append(measure(name, redis_url, args, workdir))
                finally:
                    redis_proc.terminate()
                    redis_proc.wait()
                print(f"round {round_no + 1} {name:12s} {results[name][-1]}", flush=True)
    report(results)


def sdk_cost_per_session(sessions: int = 20_000, repeats: int = 5) -> dict[str, float]:
    """In-process: select_route through the OpenFeature SDK client against the same
    route with voxroute's provider asked directly (what the service does when no
    hook, global context or other provider is registered)."""
    import logging

    from openfeature import api

    from experiments.context import RouteContext
    from experiments.flags import VoxrouteProvider
    from experiments.flags.client import RoutingFlagClient
    from experiments.router import Router
    from experiments.routing_config import load_routing_config
    from service.settings import DEFAULTS_DIR

    logging.disable(logging.WARNING)
    config = load_routing_config(DEFAULTS_DIR / "flags.json", DEFAULTS_DIR / "catalog.yaml")
    api.set_provider_and_wait(VoxrouteProvider(config.flag_set), domain="bench")
    contexts = [
        RouteContext(f"s-{i}", f"tenant-{i % 97}", ("us", "eu", "ap")[i % 3], {"s2s": i % 5 == 0})
        for i in range(sessions)
    ]
    timings = {}
    for label, direct in (("sdk", False), ("direct", True)):
        router = Router(RoutingFlagClient("bench", direct_when_unobserved=direct), config.catalog)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for context in contexts:
                router.select_route(context)
            best = min(best, time.perf_counter() - start)
        timings[label] = best / sessions * 1e6
    logging.disable(logging.NOTSET)
    return {
        "sdk_us_per_session": timings["sdk"],
        "direct_us_per_session": timings["direct"],
        "sdk_cost_us_per_session": timings["sdk"] - timings["direct"],
    }


def report(results: dict[str, list[dict[str, float]]]) -> None:
    med = {
        name: {
            k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms", "cpu_us")
        }
        for name, runs in results.items()
    }
    print(f"\n{'target':13s} {'sessions/s':>11s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU us':>8s}")
    for name, m in med.items():
        print(
            f"{name:13s} {m['rps']:11.0f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} "
            f"{m['cpu_us']:8.1f}"
        )
    ratios = {
        "voxroute/bare sessions/s": med["voxroute"]["rps"] / med["bare"]["rps"],
        "voxroute/durable sessions/s": med["voxroute"]["rps"] / med["durable"]["rps"],
        "durable/bare sessions/s": med["durable"]["rps"] / med["bare"]["rps"],
        "voxroute/durable p99": med["voxroute"]["p99_ms"] / med["durable"]["p99_ms"],
        "voxroute+key/voxroute sessions/s": med["voxroute+key"]["rps"] / med["voxroute"]["rps"],
        "voxroute+key/voxroute p99": med["voxroute+key"]["p99_ms"] / med["voxroute"]["p99_ms"],
        "voxroute+key/voxroute CPU per session": med["voxroute+key"]["cpu_us"]
        / med["voxroute"]["cpu_us"],
    }
    for label, value in ratios.items():
        print(f"{label:38s} {value:5.2f}")
    sdk = sdk_cost_per_session()
    print(
        f"routing one session (in process): {sdk['sdk_us_per_session']:.1f} us through the "
        f"OpenFeature SDK client, {sdk['direct_us_per_session']:.1f} us asking the provider "
        f"directly; the SDK costs {sdk['sdk_cost_us_per_session']:.1f} us per session"
    )
    print("JSON " + json.dumps({"medians": med, "ratios": ratios, "routing": sdk}))


if __name__ == "__main__":
    main()
