"""Reading outcome events back: `StreamReader.read_outcomes` (decoded events)
against raw XRANGE in pages of the same size on the same stream, in one run.

A dedicated `redis-server` (free loopback port, temp dir, no persistence) gets
`--events` outcome events written with pipelined XADD (`OutcomeEvent.encode()`);
then, over `--rounds` interleaved rounds, both read the whole stream:

- reader: `StreamReader.read_outcomes(batch=...)`, every `(stream_id, event)`
  kept in a list;
- pages:  `StreamReader.read_outcome_pages(batch=...)`, every page of columns
  kept (what the analysis loader reads);
- raw:    `redis.Redis.xrange(key, min="(<last id>", count=...)` with redis-py
  and hiredis, every page of raw replies kept in a list.

Target: reader <= 1.3x raw (medians). Absolute numbers drift on shared
machines: read the ratio.

    uv run python bench/bench_reader.py [--events 1000000] [--batch 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from bench_sessions import start_redis
from redis.utils import HIREDIS_AVAILABLE

from experiments.eventlog import KeyLayout, StreamReader
from experiments.events import OutcomeEvent, OutcomeKind

METRICS = ("stt_ttfb_ms", "llm_ttft_ms", "tts_ttfb_ms", "e2e_latency_ms")
SESSIONS = 10_000
WRITE_PAGE = 10_000


def event(n: int, now_ms: int) -> OutcomeEvent:
    """Turn events with four latencies; every tenth a session event with three metrics."""
    session = f"call-{n % SESSIONS}"
    if n % 10 == 9:
        metrics = (("task_success", 1.0), ("mos", 4.2), ("interruptions", float(n % 3)))
        return OutcomeEvent(f"e{n}", session, "acme", now_ms, OutcomeKind.SESSION, None, metrics)
    values = (150.0 + n % 50, 400.5 + n % 97, 110.0 + n % 31, 880.0 + n % 113)
    turn = n // SESSIONS
    metrics = tuple(zip(METRICS, values, strict=True))
    return OutcomeEvent(f"e{n}", session, "acme", now_ms, OutcomeKind.TURN, turn, metrics)


def write(client: redis.Redis, stream: str, count: int) -> float:
    started = time.perf_counter()
    now_ms = time.time_ns() // 1_000_000
    for first in range(0, count, WRITE_PAGE):
        pipe = client.pipeline(transaction=False)
        for n in range(first, min(first + WRITE_PAGE, count)):
            pipe.xadd(stream, event(n, now_ms).encode())  # type: ignore[arg-type]
        pipe.execute()
    return time.perf_counter() - started


class Timer:
    """Wall-clock and process CPU seconds since it was made: the CPU time leaves
    out Redis's share and most of the other load on a shared machine."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self, count: int) -> Timing:
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        return {"s": wall, "cpu_s": cpu, "events": count}


Timing = dict[str, float]


def read_reader(url: str, keys: KeyLayout, batch: int) -> Timing:
    with StreamReader.from_url(url, keys=keys) as reader:
        reader.read_outcomes(batch=1).__next__()  # connect outside the clock
        kept: list[Any] = []
        timer = Timer()
        for page in reader.read_outcomes(batch=batch):
            kept.extend(page)
        return timer.stop(len(kept))


def read_pages(url: str, keys: KeyLayout, batch: int) -> Timing:
    with StreamReader.from_url(url, keys=keys) as reader:
        next(reader.read_outcome_pages(batch=1))  # connect outside the clock
        kept: list[Any] = []
        timer = Timer()
        count = 0
        for page in reader.read_outcome_pages(batch=batch):
            kept.append(page)
            count += len(page)
        return timer.stop(count)


def read_raw(url: str, stream: str, batch: int, *, pause_gc: bool) -> Timing:
    """Every page of raw replies; `pause_gc`: the cyclic GC paused during each
    XRANGE call, as the reader pauses it while it fetches and decodes a page."""
    with redis.Redis.from_url(url) as client:
        client.ping()
        pages: list[Any] = []
        count = 0
        timer = Timer()
        cursor = b"0-0"
        while True:
            if pause_gc:
                gc.disable()
            page = client.xrange(stream, min=b"(" + cursor, max="+", count=batch)
            gc.enable()
            if not page:
                break
            pages.append(page)
            count += len(page)
            if len(page) < batch:
                break
            cursor = page[-1][0]
        return timer.stop(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not HIREDIS_AVAILABLE:
        sys.exit("bench needs hiredis (redis[hiredis])")
    keys = KeyLayout(prefix=f"br{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc, url = start_redis(Path(tmp))
        try:
            with redis.Redis.from_url(url) as client:
                seconds = write(client, keys.outcome_stream(0), args.events)
            print(f"wrote {args.events:,} events in {seconds:.1f} s", flush=True)
            print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            results = measure(url, keys, args)
        finally:
            redis_proc.terminate()
            redis_proc.wait()
    report(results, args)


def measure(url: str, keys: KeyLayout, args: argparse.Namespace) -> dict[str, list[Timing]]:
    """Every read of the whole stream, `--rounds` times, in alternating order."""
    results: dict[str, list[Timing]] = {name: [] for name in READS}
    for round_no in range(args.rounds):
        for name in list(READS) if round_no % 2 == 0 else list(reversed(READS)):
            gc.collect()
            timing = READS[name](url, keys, args.batch)
            if timing["events"] != args.events:
                raise RuntimeError(f"{name} read {timing['events']:,} of {args.events:,} events")
            results[name].append(timing)
            rate = f"{args.events / timing['s']:>10,.0f} events/s"
            cpu = f"CPU {timing['cpu_s']:6.2f} s"
            print(
                f"round {round_no + 1} {name:14s} {timing['s']:6.2f} s  {cpu}  {rate}", flush=True
            )
    return results


def report(results: dict[str, list[Timing]], args: argparse.Namespace) -> None:
    medians = {
        name: {key: statistics.median(t[key] for t in runs) for key in ("s", "cpu_s")}
        for name, runs in results.items()
    }
    ratios = {
        f"{name}/{base} {key}": medians[name][key] / medians[base][key]
        for name in ("reader", "pages")
        for base in ("raw", "raw-gc-paused")
        for key in ("s", "cpu_s")
    }
    print(f"\n{args.events:,} events, pages of {args.batch:,}, {args.rounds} rounds, medians:")
    print(f"  {'':46s} {'wall':>8s} {'CPU':>8s} {'wall/event':>11s}")
    for name, label in LABELS.items():
        m = medians[name]
        per_event = m["s"] / args.events * 1e6
        print(f"  {label:46s} {m['s']:6.2f} s {m['cpu_s']:6.2f} s {per_event:8.2f} us")
    print(
        f"  {'reader / raw':46s} {ratios['reader/raw s']:7.2f}x {ratios['reader/raw cpu_s']:7.2f}x"
    )
    print(
        f"  {'reader / raw with the GC paused as the reader':46s} "
        f"{ratios['reader/raw-gc-paused s']:7.2f}x {ratios['reader/raw-gc-paused cpu_s']:7.2f}x"
    )
    print(f"  {'pages / raw':46s} {ratios['pages/raw s']:7.2f}x {ratios['pages/raw cpu_s']:7.2f}x")
    print("  target: reader <= 1.3x raw")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    summary = {"events": args.events, "batch": args.batch, "medians": medians, "ratios": ratios}
    print("JSON " + json.dumps(summary | {"rounds": results}))


READS: dict[str, Callable[[str, KeyLayout, int], Timing]] = {
    "reader": read_reader,
    "pages": read_pages,
    "raw": lambda url, keys, batch: read_raw(url, keys.outcome_stream(0), batch, pause_gc=False),
    "raw-gc-paused": lambda url, keys, batch: read_raw(
        url, keys.outcome_stream(0), batch, pause_gc=True
    ),
}
LABELS = {
    "reader": "StreamReader.read_outcomes (decoded events)",
    "pages": "StreamReader.read_outcome_pages (columns)",
    "raw": "raw XRANGE, redis-py + hiredis",
    "raw-gc-paused": "raw XRANGE, GC paused per page as the reader",
}


if __name__ == "__main__":
    main()
