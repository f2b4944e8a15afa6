"""Reading part of the outcome streams in a second process (`outcomes_in_worker`).

Decoding is CPU-bound, and the outcome streams usually hold several times the
entries of the assignment stream: `load_sessions` has a spawned process read
the first part of the outcome streams while it reads the assignments, then
the rest itself (`analysis.outcome_reader.read_outcomes` on both sides). The
arrays come back through a pipe as raw buffers. The process imports this
module, which imports numpy and `experiments.eventlog` only (not pandas or
scipy), so that it starts quickly.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import numpy as np

from analysis.errors import AnalysisError
from analysis.outcome_reader import OutcomeArrays, concat_outcomes, read_outcomes
from experiments.eventlog import (
    KeyLayout,
    StreamPosition,
    StreamReader,
    parse_stream_id,
)
from experiments.performance import gc_paused

PARALLEL_MIN_OUTCOMES = 200_000
"""Outcome entries from which `load_sessions` shares them with a second process by default."""


ASSIGNMENT_COST = 1.75
"""Decoding an assignment entry costs about this many outcome entries (the reader
phase of `bench/bench_analysis.py`, per entry of each stream)."""


@contextmanager
def outcomes_in_worker(
    reader: StreamReader,
    url: str,
    since: StreamPosition,
    batch: int,
    metric_names: Sequence[str],
    *,
    span: tuple[int, int],
    assignments: int,
    outcomes: int,
) -> Iterator[Callable[[], OutcomeArrays]]:
    """Share the outcome streams between a spawned process and the caller,
    which reads the assignments first: the process reads the outcomes up to a
    point of their time `span` (first and last entry's milliseconds) chosen so
    that both sides have about the same work (`assignments` entries cost
    `ASSIGNMENT_COST` outcome entries each), and the yielded call reads the
    rest here (with `reader`), then joins both parts in stream order (or
    raises the error the process met). The process is stopped if the caller
    leaves before taking the result."""
    share = (ASSIGNMENT_COST * assignments + outcomes) / (2 * max(outcomes, 1))
    share = min(1.0, max(0.5, share))
    until = f"{span[0] + int((span[1] - span[0]) * share)}-{2**64 - 1}"
    keys = reader.keys
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    job = _OutcomeJob(url, keys.prefix, keys.shards, since, batch, list(metric_names), until)
    worker = context.Process(target=_outcome_worker, args=(sender, job), daemon=True)
    worker.start()
    sender.close()

    def result() -> OutcomeArrays:
        rest = _after(since, until, keys.shards)
        here = read_outcomes(reader, metric_names, rest, batch)
        return concat_outcomes([_result(worker, receiver), here])

    try:
        yield result
    finally:
        receiver.close()
        if worker.is_alive():
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
                worker.join()


def _after(since: StreamPosition, until: str, shards: int) -> StreamPosition:
    """`since` for the part after `until`: `until` itself (exclusive), except on
    the shards where `since` is later."""
    if isinstance(since, str):
        return max(since, until, key=parse_stream_id)
    return {s: max(since.get(s, "0-0"), until, key=parse_stream_id) for s in range(shards)}


def _result(worker: Any, receiver: Connection) -> OutcomeArrays:
    try:
        ok, value = receiver.recv()
        if not ok:
            raise value
        return _receive_arrays(receiver, value)
    except EOFError:
        worker.join()
        raise AnalysisError(
            f"the process reading the outcome streams ended (exit code {worker.exitcode}) "
            "without a result",
            context={"exit_code": worker.exitcode},
        ) from None


class _OutcomeJob(NamedTuple):
    url: str
    prefix: str
    shards: int
    since: StreamPosition
    batch: int
    metric_names: list[str]
    until: str | None


def _outcome_worker(sender: Connection, job: _OutcomeJob) -> None:
    """The outcome reader process: sends `(True, OutcomeArrays)` or `(False, error)`."""
    keys = KeyLayout(job.prefix, job.shards)
    try:
        try:
            with gc_paused(), StreamReader.from_url(job.url, keys=keys) as reader:
                arrays = read_outcomes(reader, job.metric_names, job.since, job.batch, job.until)
        except Exception as exc:  # the parent raises it
            try:
                sender.send((False, exc))
            except Exception:  # an error that does not pickle
                sender.send((False, AnalysisError(f"reading the outcome streams failed: {exc!r}")))
            return
        _send_arrays(sender, arrays)
    finally:
        sender.close()


_ARRAY_FIELDS = (
    "event_session", "event_hash", "event_turn", "value_event", "value_metric", "value"
)  # fmt: skip


def _send_arrays(sender: Connection, arrays: OutcomeArrays) -> None:
    """The lists pickled, then each array's buffer as it is: no pickled copy of
    the arrays (hundreds of MB at millions of events) in either process."""
    columns = [getattr(arrays, name) for name in _ARRAY_FIELDS]
    shapes = [(column.dtype.str, column.size) for column in columns]
    sender.send((True, (arrays.sessions, arrays.unknown_metrics, shapes)))
    for column in columns:
        sender.send_bytes(np.ascontiguousarray(column).data)


def _receive_arrays(receiver: Connection, header: Any) -> OutcomeArrays:
    sessions, unknown_metrics, shapes = header
    received: dict[str, Any] = {}
    for (dtype, size), name in zip(shapes, _ARRAY_FIELDS, strict=True):
        array = np.empty(size, dtype=np.dtype(dtype))
        got = receiver.recv_bytes_into(array.data) if array.nbytes else len(receiver.recv_bytes())
        if got != array.nbytes:
            raise AnalysisError(f"outcome array {name}: received {got} of {array.nbytes} bytes")
        received[name] = array
    return OutcomeArrays(sessions=sessions, unknown_metrics=unknown_metrics, **received)
