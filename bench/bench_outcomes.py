"""Accepted outcome events per second through POST /v1/outcomes against a plain
Python loop that pipelines the same XADDs with redis-py, in one run.

One dedicated `redis-server` (free loopback port, temp dir, no persistence)
serves both targets; the rounds interleave them and the medians are reported.

- voxroute: the real service under uvicorn (one worker, uvloop, voxroute's httptools
  protocol as `voxroute serve` runs it, no access log); `--clients` concurrent
  HTTP/1.1 clients in a separate process (async httpx) post batches of `--batch`
  turn events with unique event ids, for `--sessions` sessions created through
  POST /v1/sessions beforehand. The request bodies are built before the clock
  starts; every answer must be a 202 with every event `appended`. Each accepted
  event went through pydantic (and the duplicate-key count), the metric registry,
  a pipelined session lookup and the outcome script (EXISTS, SADD to the dedupe
  set, XADD), group-committed.
- redis-py: the same events (`OutcomeEvent.encode()`: the same fields and
  values), XADD to an outcome stream, one pipeline per `--batch` events, one
  connection, in a loop; the events are built before the clock starts, the
  encoding is timed.

Target: voxroute >= 0.5 of the redis-py loop. Absolute numbers drift on shared
machines (and the load generator shares the CPUs with the server): read the ratio.

    uv run python bench/bench_outcomes.py [--rounds 3] [--events 200000] [--batch 500]
                                          [--clients 4] [--sessions 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
import redis
from bench_sessions import free_port, start_redis, wait_port

from experiments.eventlog import KeyLayout
from experiments.events import OutcomeEvent, OutcomeKind
from service.http_protocol import UVICORN_HTTP

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"
METRICS = ("stt_ttfb_ms", "llm_ttft_ms", "tts_ttfb_ms", "e2e_latency_ms")


def metric_values(n: int) -> tuple[float, ...]:
    return (150.0 + n % 50, 400.5 + n % 97, 110.0 + n % 31, 880.0 + n % 113)


# -- the voxroute target ----------------------------------------------------------


def serve(redis_url: str, prefix: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "VOXROUTE_REDIS_URL": redis_url,
        "VOXROUTE_KEY_PREFIX": prefix,
        "VOXROUTE_DATA_DIR": str(data_dir),
        "VOXROUTE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [
        sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory",
        "--port", str(port), "--loop", "uvloop", "--http", UVICORN_HTTP,
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    wait_port(port, proc)
    return proc, port


def create_sessions(port: int, prefix: str, count: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for i in range(count):
            body = {"session_id": f"{prefix}{i}", "tenant_id": TENANT, "region": "eu"}
            response = client.post("/v1/sessions", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"session {i}: {response.status_code} {response.text}")


def http_round(
    server: tuple[int, int], redis_url: str, args: argparse.Namespace, sessions: str, tag: str
) -> dict[str, float]:
    """One timed round of the load generator, in its own process."""
    port, pid = server
    cmd = [
        sys.executable, __file__, "--generate", "--port", str(port), "--server-pid", str(pid),
        "--redis-url", redis_url, "--events", str(args.events),
        "--batch", str(args.batch), "--clients", str(args.clients), "--sessions",
        str(args.sessions), "--session-prefix", sessions, "--tag", tag,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


def bodies(args: argparse.Namespace, tag: str, requests: int, first: int) -> list[bytes]:
    """`requests` batch bodies of unique events, spread over the sessions."""
    out = []
    for r in range(first, first + requests):
        events = []
        for i in range(args.batch):
            n = r * args.batch + i
            values = metric_values(n)
            events.append(
                {
                    "session_id": f"{args.session_prefix}{n % args.sessions}",
                    "event_id": f"{tag}-{n}",
                    "turn": n // args.sessions,
                    "metrics": dict(zip(METRICS, values, strict=True)),
                }
            )
        out.append(orjson.dumps({"events": events}))
    return out


async def generate(args: argparse.Namespace) -> dict[str, float]:
    warm = bodies(args, args.tag, args.clients, 0)
    timed = bodies(args, args.tag, args.events // args.batch, args.clients)
    latencies: list[float] = []
    server = CpuMeter(args.redis_url, pid=args.server_pid)
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{args.port}", limits=limits, timeout=60
    ) as client:

        async def post(body: bytes) -> None:
            started = time.perf_counter()
            response = await client.post(
                "/v1/outcomes", content=body, headers={"content-type": "application/json"}
            )
            latencies.append(time.perf_counter() - started)
            counts = orjson.loads(response.content).get("counts", {})
            if response.status_code != 202 or counts.get("appended") != args.batch:
                raise RuntimeError(f"{response.status_code}: {response.text[:500]}")

        async def worker(queue: list[bytes]) -> None:
            while queue:
                await post(queue.pop())

        await asyncio.gather(*(post(body) for body in warm))  # opens every connection
        latencies.clear()
        timed.reverse()
        server.start()
        started = time.perf_counter()
        await asyncio.gather(*(worker(timed) for _ in range(args.clients)))
        seconds = time.perf_counter() - started
        cpu = server.stop()
    events = len(latencies) * args.batch
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "events": events,
        "seconds": seconds,
        "rate": events / seconds,
        "p50_ms": cuts[49] * 1e3,
        "p99_ms": cuts[98] * 1e3,
        "python_cpu_us": cpu[0] / events * 1e6,
        "redis_cpu_us": cpu[1] / events * 1e6,
    }


class CpuMeter:
    """CPU seconds used by a process (`pid`, else this one) and by redis-server
    between `start` and `stop`: a figure the other load on a shared machine
    disturbs less than the wall-clock rate."""

    def __init__(self, redis_url: str, pid: int | None = None) -> None:
        self._redis = redis.Redis.from_url(redis_url)
        self._pid = pid
        self._started = (0.0, 0.0)

    def start(self) -> None:
        self._started = self._now()

    def stop(self) -> tuple[float, float]:
        python, server = self._now()
        self._redis.close()
        return python - self._started[0], server - self._started[1]

    def _now(self) -> tuple[float, float]:
        info = self._redis.info("cpu")
        server = float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])
        if self._pid is None:
            return time.process_time(), server
        ticks = Path(f"/proc/{self._pid}/stat").read_text().rpartition(")")[2].split()
        return (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK"), server


# -- the redis-py baseline ------------------------------------------------------


def baseline_round(
    redis_url: str, keys: KeyLayout, args: argparse.Namespace, sessions: str, tag: str
) -> dict[str, float]:
    now_ms = time.time_ns() // 1_000_000
    events = [
        OutcomeEvent(
            f"{tag}-{n}", f"{sessions}{n % args.sessions}", TENANT, now_ms, OutcomeKind.TURN,
            n // args.sessions, tuple(zip(METRICS, metric_values(n), strict=True)),
        )
        for n in range(args.events)
    ]  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    meter = CpuMeter(redis_url)
    try:
        client.ping()
        meter.start()
        started = time.perf_counter()
        for first in range(0, len(events), args.batch):
            pipe = client.pipeline(transaction=False)
            for event in events[first : first + args.batch]:
                pipe.xadd(keys.outcome_stream_of(event.session_id), event.encode())  # type: ignore[arg-type]
            pipe.execute()
        seconds = time.perf_counter() - started
        cpu = meter.stop()
    finally:
        client.close()
    return {
        "events": len(events),
        "seconds": seconds,
        "rate": len(events) / seconds,
        "python_cpu_us": cpu[0] / len(events) * 1e6,
        "redis_cpu_us": cpu[1] / len(events) * 1e6,
    }


# -- the run --------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    if args.events % args.batch:
        sys.exit("--events must be a multiple of --batch")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis_proc, redis_url = start_redis(workdir)
        service_keys = KeyLayout(prefix=f"bo{uuid.uuid4().hex[:8]}")
        baseline_keys = KeyLayout(prefix=f"bb{uuid.uuid4().hex[:8]}")
        server, port = serve(redis_url, service_keys.prefix, workdir / "data")
        try:
            sessions = f"s{uuid.uuid4().hex[:8]}-"
            create_sessions(port, sessions, args.sessions)
            print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            results: dict[str, list[dict[str, float]]] = {"voxroute": [], "redis-py": []}
            for round_no in range(args.rounds):
                tag = f"r{round_no}{uuid.uuid4().hex[:6]}"
                order = ["voxroute", "redis-py"] if round_no % 2 == 0 else ["redis-py", "voxroute"]
                for name in order:
                    if name == "voxroute":
                        result = http_round((port, server.pid), redis_url, args, sessions, tag)
                    else:
                        result = baseline_round(redis_url, baseline_keys, args, sessions, tag)
                    results[name].append(result)
                    print(f"round {round_no + 1} {name:9s} {fmt(result)}", flush=True)
            check_streams(redis_url, service_keys, baseline_keys, results, args)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            redis_proc.terminate()
            redis_proc.wait()
    report(results, args)


def fmt(result: dict[str, float]) -> str:
    text = f"{result['rate']:>9,.0f} events/s  ({result['events']:,} in {result['seconds']:.2f} s)"
    if "p50_ms" in result:
        text += f"  request p50 {result['p50_ms']:.0f} ms  p99 {result['p99_ms']:.0f} ms"
    cpu = f"Python {result['python_cpu_us']:.1f} us, Redis {result['redis_cpu_us']:.1f} us"
    return f"{text}  CPU/event: {cpu}"


def check_streams(
    redis_url: str,
    service_keys: KeyLayout,
    baseline_keys: KeyLayout,
    results: dict[str, list[dict[str, float]]],
    args: argparse.Namespace,
) -> None:
    """Every accepted event (warm-ups included) is in the stream, once."""
    warmups = args.rounds * args.clients * args.batch
    with redis.Redis.from_url(redis_url) as client:
        stored = client.xlen(service_keys.outcome_stream(0))
        baseline = client.xlen(baseline_keys.outcome_stream(0))
    accepted = sum(int(r["events"]) for r in results["voxroute"]) + warmups
    if stored != accepted or baseline != sum(int(r["events"]) for r in results["redis-py"]):
        raise RuntimeError(f"streams hold {stored} and {baseline} entries, {accepted} accepted")
    print(f"outcome stream: {stored:,} entries = {accepted:,} accepted (warm-ups included)")


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in MEDIANS}
        for name, runs in results.items()
    }
    vox, base = medians["voxroute"], medians["redis-py"]
    ratio = vox["rate"] / base["rate"]
    # what each side could sustain if its busiest process had a CPU to itself
    cpu_ratio = max(base["python_cpu_us"], base["redis_cpu_us"]) / max(
        vox["python_cpu_us"], vox["redis_cpu_us"]
    )
    print(f"\nbatch {args.batch}, {args.clients} HTTP clients, {args.rounds} rounds, medians:")
    print(f"{'':30s} {'events/s':>9s} {'Python CPU/event':>17s} {'Redis CPU/event':>16s}")
    for name, label in (
        ("voxroute", "voxroute POST /v1/outcomes"),
        ("redis-py", "redis-py pipelined XADD"),
    ):
        m = medians[name]
        cpu = f"{m['python_cpu_us']:>14.1f} us {m['redis_cpu_us']:>13.1f} us"
        print(f"{label:30s} {m['rate']:>9,.0f} {cpu}")
    print(f"voxroute / redis-py events/s  {ratio:9.2f}   (target >= 0.5)")
    print(
        f"same, bound by the busiest CPU {cpu_ratio:8.2f}   (1 / max(Python, Redis) CPU per event)"
    )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    summary = {"batch": args.batch, "clients": args.clients, "events_per_round": args.events}
    summary |= {"medians": medians, "ratio": ratio, "cpu_ratio": cpu_ratio, "rounds": results}
    print("JSON " + json.dumps(summary))


MEDIANS = ("rate", "python_cpu_us", "redis_cpu_us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=200_000, help="events per target per round")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--session-prefix", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        import uvloop

        result = uvloop.run(generate(args))
        print("RESULT " + json.dumps(result), flush=True)
    else:
        run(args)


if __name__ == "__main__":
    main()
