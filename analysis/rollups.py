"""Outcome events -> one value per session and metric, on numpy arrays.

`OutcomeColumns` takes the outcome stream batch by batch and keeps flat
arrays: per event its session's row (or -1 for a session not loaded), the
hash of its event id and whether it is a turn; per reported value its event,
its metric and the value. `rollup_metrics` then deduplicates events and rolls
the values up per session as the registry says:

* `mean`: the mean over the session's values, plus their sum and count (the
  parts of the ratio metric "sum over turns / turns");
* `sum`, `max`: over the session's values; `last`: the last value recorded
  (stream order is time order).

A session without a value of a metric gets NaN (and count 0).

Deduplication: an event id is unique, and a replayed event carries its
session; two events are the same when they have the same session and the
same 64-bit hash of the event id (SipHash; a false match needs two distinct
ids of one session to collide, about 1 in 10^19). Keeping hashes instead of
the id strings saves about 300 MB at 3,000,000 events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis import columns as col
from analysis.metric_specs import MetricSpec
from experiments.eventlog import OutcomePage
from experiments.events import OutcomeKind
from experiments.metrics import Rollup

_IS_TURN = {kind: kind is OutcomeKind.TURN for kind in OutcomeKind}


def _unknown() -> int:
    return -1


class OutcomeColumns:
    """Flat arrays of the outcome events of the sessions in `sessions` (a unique index)."""

    def __init__(self, sessions: pd.Index, metric_names: Sequence[str]) -> None:
        self.sessions = sessions
        self.metric_codes: defaultdict[str, int] = defaultdict(_unknown)
        self.metric_codes.update((name, code) for code, name in enumerate(metric_names))
        self.events = 0
        self.parts: dict[str, list[NDArray[Any]]] = defaultdict(list)

    def add(self, page: OutcomePage) -> None:
        n = len(page)
        if not n:
            return
        rows = self.sessions.get_indexer(page.session_ids).astype(np.int32)
        self._append(
            event_row=rows,
            event_hash=np.fromiter(map(hash, page.event_ids), np.int64, count=n),
            event_turn=np.fromiter(map(_IS_TURN.__getitem__, page.kinds), bool, count=n),
        )
        names = page.metric_names
        if names:
            counts = np.asarray(page.metric_counts, dtype=np.int64)
            self._append(
                value_event=np.repeat(np.arange(self.events, self.events + n), counts),
                value_metric=np.fromiter(
                    map(self.metric_codes.__getitem__, names), np.int16, count=len(names)
                ),
                value=np.asarray(page.metric_values, dtype=np.float64),
            )
        self.events += n

    def _append(self, **arrays: NDArray[Any]) -> None:
        for name, array in arrays.items():
            self.parts[name].append(array)

    def array(self, name: str, dtype: Any) -> NDArray[Any]:
        parts = self.parts.pop(name, [])
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    @property
    def unknown_metrics(self) -> list[str]:
        return sorted(name for name, code in self.metric_codes.items() if code < 0)


def _duplicates(rows: NDArray[np.int32], hashes: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Events whose (session, event id hash) was seen earlier in the stream."""
    if not pd.Index(hashes).has_duplicates:
        return np.zeros(rows.size, dtype=bool)
    return np.asarray(pd.DataFrame({"row": rows, "hash": hashes}).duplicated(keep="first"))


def rollup_metrics(
    outcomes: OutcomeColumns, specs: Sequence[MetricSpec], n_sessions: int
) -> tuple[dict[str, NDArray[Any]], NDArray[np.int64], dict[str, Any]]:
    """Per-session metric columns, turns per session, and what was dropped."""
    rows = outcomes.array("event_row", np.int32)
    duplicate = _duplicates(rows, outcomes.array("event_hash", np.int64))
    keep = (rows >= 0) & ~duplicate
    turn = outcomes.array("event_turn", bool)
    turns = np.bincount(rows[keep & turn], minlength=n_sessions).astype(np.int64)
    value_event = outcomes.array("value_event", np.int64)
    metric = outcomes.array("value_metric", np.int16)
    value = outcomes.array("value", np.float64)
    kept = keep[value_event]
    value_row = rows[value_event]
    columns: dict[str, NDArray[Any]] = {}
    for code, spec in enumerate(specs):
        mask = kept & (metric == code)
        columns.update(_rollup(spec, value_row[mask], value[mask], n_sessions))
    dropped = {
        "duplicate_outcomes": int(duplicate.sum()),
        "orphan_outcomes": int(np.count_nonzero(rows < 0)),
        "unregistered_metrics": outcomes.unknown_metrics,
    }
    return columns, turns, dropped


def _rollup(
    spec: MetricSpec, rows: NDArray[np.int32], values: NDArray[np.float64], n: int
) -> dict[str, NDArray[Any]]:
    counts = np.bincount(rows, minlength=n)
    empty = counts == 0
    if spec.rollup in (Rollup.MEAN, Rollup.SUM):
        sums = np.bincount(rows, weights=values, minlength=n).astype(np.float64)
        sums[empty] = np.nan
        if spec.rollup is Rollup.SUM:
            return {spec.name: sums}
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        return {
            spec.name: means,
            col.sum_column(spec.name): sums,
            col.count_column(spec.name): counts,
        }
    grouped = pd.Series(values).groupby(rows, sort=False)
    rolled = grouped.max() if spec.rollup is Rollup.MAX else grouped.last()
    out = np.full(n, np.nan)
    out[rolled.index.to_numpy()] = rolled.to_numpy()
    return {spec.name: out}
