"""Session-log write throughput (group commit against one EVALSHA per call) and
stream-reader throughput, on a fresh embedded Redis (AOF, fsync every second).

- group commit: `RedisSessionLog.create_session` from C concurrent tasks
- per call:     the same script, one EVALSHA per call over a connection pool
- reader:       `StreamReader.read_assignments` over everything written

    uv run python bench/bench_eventlog.py [--sessions 50000] [--concurrency 1 32 256]
                                          [--shards 1 4] [--url redis://...]

Absolute numbers drift on shared machines: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator

import redis
import redis.asyncio as aioredis

from experiments.eventlog import KeyLayout, RedisSessionLog, StreamReader
from experiments.eventlog.session_log import (
    CREATE_SESSION_SCRIPT,
    CREATE_SESSION_SHA,
    create_session_args,
)
from experiments.events import Assignment, AssignmentEvent
from service.embedded_redis import EmbeddedRedis

DOCUMENT = b'{"session_id":"x","route":{"mode":"pipeline","stt":"deepgram","tts":"cartesia"}}' * 4


def make_event(session_id: str) -> AssignmentEvent:
    split = Assignment(
        "stt-provider", "3", "deepgram", "deepgram-nova-3", "SPLIT", None, "session",
        session_id, "stt-1", (("deepgram", 50), ("whisper", 50)),
    )  # fmt: skip
    static = Assignment("voice-mode", "1", "pipeline", "pipeline", "STATIC", *[None] * 5)
    return AssignmentEvent(uuid.uuid4().hex, session_id, "acme", "eu-west", 0, (split, static))


async def run_calls(call: object, sessions: int, concurrency: int) -> tuple[float, list[float]]:
    """`call(i)` for every session from `concurrency` workers; (seconds, latencies)."""
    latencies: list[float] = []
    counter = iter(range(sessions))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await call(i)  # type: ignore[operator]
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def bench_writes(url: str, keys: KeyLayout, sessions: int, concurrency: int) -> None:
    client = aioredis.Redis.from_url(url, max_connections=concurrency + 4)
    log = RedisSessionLog(client, keys, session_ttl_s=3600)
    tag = uuid.uuid4().hex[:8]
    events = [make_event(f"g{tag}-{i}") for i in range(sessions)]

    async def grouped(i: int) -> None:
        await log.create_session(events[i].session_id, DOCUMENT, events[i])

    seconds, latencies = await run_calls(grouped, sessions, concurrency)
    report("group commit", concurrency, seconds, latencies, batch=log.flushed / log.flushes)

    await client.script_load(CREATE_SESSION_SCRIPT)
    singles = [make_event(f"p{tag}-{i}") for i in range(sessions)]

    async def per_call(i: int) -> None:
        event = singles[i]
        await client.evalsha(  # one session per call: header TTL, no MAXLEN, no MINID
            CREATE_SESSION_SHA, 2, keys.assignment_stream_of(event.session_id),
            keys.session_key(event.session_id), "3600", "0", "0",
            *create_session_args(DOCUMENT, event),
        )  # fmt: skip

    seconds, latencies = await run_calls(per_call, sessions, concurrency)
    report("per call", concurrency, seconds, latencies, batch=1.0)
    await log.aclose()
    await client.aclose()


def report(name: str, concurrency: int, seconds: float, lat: list[float], *, batch: float) -> None:
    cuts = statistics.quantiles(lat, n=100)
    print(
        f"{name:>12}  c={concurrency:<4} {len(lat) / seconds:>9,.0f} sessions/s  "
        f"p50 {cuts[49] * 1e3:6.2f} ms  p99 {cuts[98] * 1e3:6.2f} ms  mean batch {batch:6.1f}"
    )


def bench_reader(url: str, keys: KeyLayout) -> None:
    with StreamReader.from_url(url, keys=keys) as reader:
        started = time.perf_counter()
        count = sum(len(batch) for batch in reader.read_assignments(batch=10_000))
        seconds = time.perf_counter() - started
    rate = count / seconds
    print(f"{'reader':>12}  shards={keys.shards}  {count:,} events  {rate:,.0f} events/s")


@contextlib.contextmanager
def redis_url(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory() as folder, EmbeddedRedis(folder) as server:
        yield server.url


def cleanup(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as conn:
        for key in conn.scan_iter(match=f"{prefix}:*", count=1000):
            conn.unlink(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--url", help="a Redis to use instead of a fresh embedded one")
    args = parser.parse_args()
    with redis_url(args.url) as url:
        for shards in args.shards:
            keys = KeyLayout(prefix=f"vrbench:{uuid.uuid4().hex[:8]}", shards=shards)
            print(f"-- shards={shards}")
            try:
                for concurrency in args.concurrency:
                    asyncio.run(bench_writes(url, keys, args.sessions, concurrency))
                bench_reader(url, keys)
            finally:
                cleanup(url, keys.prefix)


if __name__ == "__main__":
    main()
