"""Reading the outcome streams into flat arrays, in this process or in another.

`OutcomeColumns` takes the outcome stream page by page and keeps flat arrays
(`OutcomeArrays`): per event its session (numbered in order of first sight),
the hash of its event id and whether it is a turn; per reported value its
event, its metric and the value. It needs nothing from the assignment stream,
so `load_sessions` can read part of the outcomes in a second process while it
reads the assignments (`analysis.outcome_worker`); `analysis.rollups` then
joins them on the loaded sessions and rolls them up.

This module imports numpy and `experiments.eventlog` only (not pandas or
scipy), so that the second process starts quickly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from experiments.eventlog import (
    OutcomePage,
    StreamPosition,
)
from experiments.events import OutcomeEvent, OutcomeKind

_IS_TURN = {kind: kind is OutcomeKind.TURN for kind in OutcomeKind}


class OutcomeEventReader(Protocol):
    """What `read_outcomes` reads: the outcome streams in batches, oldest first."""

    def read_outcomes(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, OutcomeEvent]]]: ...


def _unknown() -> int:
    return -1


class _Numbering(dict[str, int]):
    """Numbers keys in order of first sight; lookups of known keys stay in C."""

    def __missing__(self, key: str) -> int:
        self[key] = number = len(self)
        return number


@dataclass(frozen=True, slots=True)
class OutcomeArrays:
    """The outcome events read, as flat arrays (picklable: a worker process can
    build it). Per event: its session (an index into `sessions`), the 64-bit
    hash of its event id and whether it is a turn; per reported value: its
    event, its metric (an index into the metric names asked for, -1 for a name
    not among them) and the value."""

    sessions: list[str]
    event_session: NDArray[np.int32]
    event_hash: NDArray[np.int64]
    event_turn: NDArray[np.bool_]
    value_event: NDArray[np.int32]
    value_metric: NDArray[np.int16]
    value: NDArray[np.float64]
    unknown_metrics: list[str]


class OutcomeColumns:
    """Collects outcome pages into `OutcomeArrays`, for the metrics `metric_names`."""

    def __init__(self, metric_names: Sequence[str]) -> None:
        self.metric_codes: defaultdict[str, int] = defaultdict(_unknown)
        self.metric_codes.update((name, code) for code, name in enumerate(metric_names))
        self.session_codes = _Numbering()
        self.events = 0
        self.parts: dict[str, list[NDArray[Any]]] = defaultdict(list)

    def add(self, page: OutcomePage) -> None:
        n = len(page)
        if not n:
            return
        self._append(
            event_session=np.fromiter(
                map(self.session_codes.__getitem__, page.session_ids), np.int32, count=n
            ),
            event_hash=stable_hashes(page.event_ids),
            event_turn=np.fromiter(map(_IS_TURN.__getitem__, page.kinds), bool, count=n),
        )
        names = page.metric_names
        if names:
            counts = np.asarray(page.metric_counts, dtype=np.int64)
            self._append(
                value_event=np.repeat(
                    np.arange(self.events, self.events + n, dtype=np.int32), counts
                ),
                value_metric=np.fromiter(
                    map(self.metric_codes.__getitem__, names), np.int16, count=len(names)
                ),
                value=np.asarray(page.metric_values, dtype=np.float64),
            )
        self.events += n

    def _append(self, **arrays: NDArray[Any]) -> None:
        for name, array in arrays.items():
            self.parts[name].append(array)

    def _array(self, name: str, dtype: Any) -> NDArray[Any]:
        parts = self.parts.pop(name, [])
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    def arrays(self) -> OutcomeArrays:
        """Everything added, as arrays (the collected pages are released)."""
        sessions = list(self.session_codes)
        self.session_codes = _Numbering()
        return OutcomeArrays(
            sessions,
            self._array("event_session", np.int32),
            self._array("event_hash", np.int64),
            self._array("event_turn", bool),
            self._array("value_event", np.int32),
            self._array("value_metric", np.int16),
            self._array("value", np.float64),
            sorted(name for name, code in self.metric_codes.items() if code < 0),
        )


def concat_outcomes(parts: Sequence[OutcomeArrays]) -> OutcomeArrays:
    """Consecutive parts of the outcome streams as one (read apart, in order)."""
    if len(parts) == 1:
        return parts[0]
    session_offsets = np.cumsum([0, *(len(p.sessions) for p in parts[:-1])])
    event_offsets = np.cumsum([0, *(p.event_session.size for p in parts[:-1])])
    return OutcomeArrays(
        [session for part in parts for session in part.sessions],
        np.concatenate(
            [p.event_session + o for p, o in zip(parts, session_offsets, strict=True)]
        ).astype(np.int32),
        np.concatenate([p.event_hash for p in parts]),
        np.concatenate([p.event_turn for p in parts]),
        np.concatenate(
            [p.value_event + o for p, o in zip(parts, event_offsets, strict=True)]
        ).astype(np.int32),
        np.concatenate([p.value_metric for p in parts]),
        np.concatenate([p.value for p in parts]),
        sorted({name for part in parts for name in part.unknown_metrics}),
    )


_MULTIPLY = np.uint64(0x9E3779B97F4A7C15)
_FMIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))


def stable_hashes(texts: Sequence[str]) -> NDArray[np.int64]:
    """A 64-bit hash of each string that every process computes alike (Python's
    `hash` is salted per process, and parts of the outcome streams are read by
    different processes): the string's UCS-4 code points, two to a 64-bit
    word, mixed word by word (xor, multiply, shift) up to its own length,
    then its length, finished with MurmurHash3's fmix64. A string's hash does
    not depend on the others hashed with it. Not cryptographic: it tells
    apart the event ids of one session."""
    n = len(texts)
    if not n:
        return np.empty(0, dtype=np.int64)
    codes = np.array(texts, dtype=np.str_)
    lengths = np.strings.str_len(codes).astype(np.uint64)
    width = codes.dtype.itemsize // 4
    points = codes.view(np.uint32).reshape(n, width)
    if width % 2:
        points = np.concatenate([points, np.zeros((n, 1), dtype=np.uint32)], axis=1)
    words = np.ascontiguousarray(points).view(np.uint64)
    used = (lengths + np.uint64(1)) // np.uint64(2)  # words holding code points
    with np.errstate(over="ignore"):
        h = np.full(n, _MULTIPLY, dtype=np.uint64)
        for j, column in enumerate(words.T):
            mixed = (h ^ column) * _MULTIPLY
            mixed ^= mixed >> np.uint64(32)
            h = np.where(used > j, mixed, h)
        h ^= lengths * _MULTIPLY
        for multiplier in _FMIX:
            h ^= h >> np.uint64(33)
            h *= multiplier
        h ^= h >> np.uint64(33)
    return h.view(np.int64)


def read_outcomes(
    reader: OutcomeEventReader,
    metric_names: Sequence[str],
    since: StreamPosition,
    batch: int,
    until: str | None = None,
) -> OutcomeArrays:
    """Every outcome event after `since` (up to `until`, inclusive, when the
    reader reads pages) as `OutcomeArrays` for `metric_names`."""
    outcomes = OutcomeColumns(metric_names)
    for page in _outcome_pages(reader, since, batch, until):
        outcomes.add(page)
    return outcomes.arrays()


def _outcome_pages(
    reader: OutcomeEventReader, since: StreamPosition, batch: int, until: str | None = None
) -> Iterator[OutcomePage]:
    read_pages = getattr(reader, "read_outcome_pages", None)
    if read_pages is not None:
        pages = (
            read_pages(since=since, batch=batch, until=until)
            if until
            else read_pages(since=since, batch=batch)
        )
        return cast("Iterator[OutcomePage]", pages)
    if until is not None:
        raise ValueError("until needs a reader with read_outcome_pages")
    return map(OutcomePage.from_events, reader.read_outcomes(since=since, batch=batch))
