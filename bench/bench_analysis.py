"""Loading and analysing an experiment from Redis, against the raw read of the same streams.

Writes N sessions (N assignment events with the five flags a pipeline session
evaluates, 3 N turn-level outcome events with four metrics each) through the
events' stream encodings into a dedicated redis-server on a free port (fed
by `redis-cli --pipe`), then, each phase in its own subprocess so that peak
memory is the phase's own:

- raw:     XRANGE of both streams in batches of 10,000 (redis-py, bytes): the baseline
- reader:  the same through `StreamReader.read_assignment_pages/read_outcome_pages`
           (pages of decoded columns, nothing else), in one process
- analyse: `load_sessions(url, "stt-provider")` then `analyze(df, segment_by="region")`;
           the loader reads the outcome streams in a second process meanwhile

and prints the ratio analyse / raw (target <= 1.5) and each phase's peak RSS
(target < 2 GiB; for analyse, the phase's process and its outcome-reading
process, added up). Phases alternate `--repeat` times; the best time counts.

    uv run python bench/bench_analysis.py [--sessions 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import redis

from experiments.eventlog import KeyLayout, StreamReader
from experiments.events import (
    ASSIGNMENT_FIELDS,
    OUTCOME_FIELDS,
    Assignment,
    AssignmentEvent,
    OutcomeEvent,
    OutcomeKind,
)

FLAG = "stt-provider"
STT = (("deepgram-nova-3", 50), ("assemblyai-universal", 50))
TTS = (("elevenlabs-flash", 50), ("cartesia-sonic", 50))
CHUNK = 20_000
START_MS = 1_767_225_600_000
GIB = 1024**3
PHASES = ("raw", "reader", "analyse")


def _resp(*parts: bytes) -> bytes:
    """One command in the Redis protocol (RESP2 array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    out.extend(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
    return b"".join(out)


def _xadd(stream: bytes, fields: tuple[bytes, ...], values: tuple[bytes, ...]) -> bytes:
    pairs = [item for pair in zip(fields, values, strict=True) for item in pair]
    return _resp(b"XADD", stream, b"*", *pairs)


def _assignment(i: int, rng: np.random.Generator) -> AssignmentEvent:
    sid, tenant = f"s{i:07d}", f"t{i % 500}"
    region = ("us", "eu")[i % 2]
    stt = STT[int(rng.integers(2))][0]
    tts = TTS[hash(tenant) % 2][0]
    assignments = (
        Assignment("voice-mode", "m1", "pipeline", "pipeline", "TARGETING_MATCH", *[None] * 5),
        Assignment(
            FLAG, "f1", stt, stt, "SPLIT", None, "targetingKey", sid, "stt-provider/b1", STT
        ),
        Assignment(
            "tts-provider", "f2", tts, tts, "SPLIT", None, "tenant_id", f"tts-provider{tenant}",
            "tts-provider/c2", TTS,
        ),
        Assignment("vad-provider", "f3", "silero", "silero", "STATIC", *[None] * 5),
        Assignment("turn-detector", "f4", "heuristic", "heuristic", "STATIC", *[None] * 5),
    )  # fmt: skip
    return AssignmentEvent(f"a-{sid}", sid, tenant, region, START_MS + i * 50, assignments)


def _outcomes(event: AssignmentEvent, rng: np.random.Generator) -> list[OutcomeEvent]:
    faster = event.assignments[1].variant == "assemblyai-universal"
    values = rng.normal(0.0, 40.0, size=(3, 3))
    return [
        OutcomeEvent(
            f"o-{event.session_id}-{turn}",
            event.session_id,
            event.tenant_id,
            event.ts_ms + turn * 1000,
            OutcomeKind.TURN,
            turn,
            (
                ("stt_ttfb_ms", float(300.0 - (8.0 if faster else 0.0) + values[turn - 1, 0])),
                ("tts_ttfb_ms", float(250.0 + values[turn - 1, 1])),
                ("e2e_latency_ms", float(900.0 + values[turn - 1, 2])),
                ("interruptions", float(rng.random() < 0.1)),
            ),
        )
        for turn in (1, 2, 3)
    ]


A_FIELDS = tuple(name.encode() for name in ASSIGNMENT_FIELDS)


def _commands(first: int, count: int, keys: KeyLayout, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    assignments, outcomes = keys.assignment_stream(0).encode(), keys.outcome_stream(0).encode()
    out = []
    for i in range(first, first + count):
        event = _assignment(i, rng)
        out.append(_xadd(assignments, A_FIELDS, event.encode_values()))
        out.extend(
            _xadd(outcomes, OUTCOME_FIELDS, o.encode_values()) for o in _outcomes(event, rng)
        )
    return b"".join(out)


def generate(port: int, sessions: int, keys: KeyLayout) -> float:
    """Write every event through `redis-cli --pipe`; returns the seconds it took."""
    started = time.perf_counter()
    pipe = subprocess.Popen(
        ["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert pipe.stdin is not None
    for first in range(0, sessions, CHUNK):
        pipe.stdin.write(_commands(first, min(CHUNK, sessions - first), keys, seed=first))
    pipe.stdin.close()
    output = pipe.stdout.read().decode() if pipe.stdout else ""
    if pipe.wait() != 0 or "errors: 0" not in output:
        raise RuntimeError(f"redis-cli --pipe failed: {output}")
    return time.perf_counter() - started


def phase_raw(url: str, keys: KeyLayout) -> dict[str, float]:
    client = redis.Redis.from_url(url, socket_timeout=300)
    entries = 0
    for stream in (keys.assignment_stream(0), keys.outcome_stream(0)):
        cursor = "-"
        while page := client.xrange(stream, min=cursor, max="+", count=10_000):
            entries += len(page)
            cursor = "(" + page[-1][0].decode()
    return {"entries": entries}


def phase_reader(url: str, keys: KeyLayout) -> dict[str, float]:
    with StreamReader.from_url(url, keys=keys, socket_timeout_s=300) as reader:
        entries = sum(len(page) for page in reader.read_assignment_pages())
        entries += sum(len(page) for page in reader.read_outcome_pages())
    return {"entries": entries}


def phase_analyse(url: str, keys: KeyLayout) -> dict[str, float]:
    from analysis import analyze, load_sessions

    started = time.perf_counter()
    df = load_sessions(url, FLAG, key_prefix=keys.prefix)
    loaded = time.perf_counter()
    result = analyze(df, segment_by="region")
    analysed = time.perf_counter()
    ttfb = next(c for c in result.periods[0].comparisons if c.metric == "stt_ttfb_ms")
    return {
        "sessions": len(df),
        "load_s": loaded - started,
        "analyze_s": analysed - loaded,
        "frame_mb": df.memory_usage(deep=True).sum() / 2**20,
        "ttfb_effect": ttfb.comparison.absolute.estimate,
    }


def run_phase(name: str, url: str, prefix: str) -> dict[str, float]:
    """Run one phase in a fresh interpreter; its wall time and peak RSS come back as JSON."""
    command = [sys.executable, __file__, "--phase", name, "--url", url, "--prefix", prefix]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def child(name: str, url: str, prefix: str) -> None:
    keys = KeyLayout(prefix=prefix)
    if name == "analyse":  # imports (pandas, scipy: about a second) are not the phase's work
        import analysis.experiment
        import analysis.load  # noqa: F401
    started = time.perf_counter()
    stats = {"raw": phase_raw, "reader": phase_reader, "analyse": phase_analyse}[name](url, keys)
    stats["seconds"] = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB
    stats["peak_rss_own_gib"], stats["peak_rss_worker_gib"] = own, children
    stats["peak_rss_gib"] = own + children  # both at their peak at once: an upper bound
    print(json.dumps(stats))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """A dedicated redis-server without persistence, on a free port, in a temporary dir."""
    folder = tempfile.mkdtemp(prefix="vr-bench-analysis-")
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", folder, "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="vrbench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args.phase, args.url, args.prefix)
        return
    keys = KeyLayout(prefix=args.prefix)
    with redis_server() as port:
        url = f"redis://127.0.0.1:{port}/0"
        seconds = generate(port, args.sessions, keys)
        client = redis.Redis(port=port)
        lengths = [client.xlen(keys.assignment_stream(0)), client.xlen(keys.outcome_stream(0))]
        used = int(client.info("memory")["used_memory"]) / GIB
        print(f"wrote {lengths[0]:,} assignments and {lengths[1]:,} outcomes in {seconds:.1f} s "
              f"(redis-server holds {used:.2f} GiB)")  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in PHASES}
        for _ in range(args.repeat):
            for name in PHASES:
                runs[name].append(run_phase(name, url, keys.prefix))
        report(runs)


def report(runs: dict[str, list[dict[str, float]]]) -> None:
    raw, reader, best = (min(runs[n], key=lambda r: r["seconds"]) for n in PHASES)
    ratio = best["seconds"] / raw["seconds"]
    lines = [
        f"raw XRANGE read      {raw['seconds']:7.1f} s   {raw['entries']:,.0f} entries, "
        f"peak RSS {raw['peak_rss_gib']:.2f} GiB",
        f"reader pages only    {reader['seconds']:7.1f} s   "
        f"{reader['seconds'] / raw['seconds']:.2f} x raw (decoding into columns, one process)",
        f"load_sessions        {best['load_s']:7.1f} s   {best['sessions']:,.0f} sessions, "
        f"frame {best['frame_mb']:.0f} MiB",
        f"analyze              {best['analyze_s']:7.1f} s   effect on stt_ttfb_ms "
        f"{best['ttfb_effect']:+.2f} ms (true -8)",
        f"load + analyze       {best['seconds']:7.1f} s   peak RSS {best['peak_rss_gib']:.2f} GiB "
        f"(target < 2; {best['peak_rss_own_gib']:.2f} GiB + outcome process "
        f"{best['peak_rss_worker_gib']:.2f} GiB)",
        f"ratio to raw read    {ratio:7.2f} x (target <= 1.5)",
    ]
    if len(runs["raw"]) > 1:
        every = {n: [round(r["seconds"], 1) for r in runs[n]] for n in PHASES}
        lines.append(f"every run (s): {every}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
