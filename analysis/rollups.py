"""Outcome events -> one value per session and metric, on numpy arrays.

`analysis.outcome_reader.OutcomeColumns` takes the outcome stream page by page
and keeps flat arrays (`OutcomeArrays`): per event its session (numbered in
order of first sight), the hash of its event id and whether it is a turn; per
reported value its event, its metric and the value. It needs nothing from the
assignment stream, so another process can read a part of the outcomes while
the first reads the assignments (`analysis.load`). `rollup_metrics` then maps the sessions to the
loaded ones (outcomes of other sessions are dropped and counted), deduplicates
events and rolls the values up per session as the registry says:

* `mean`: the mean over the session's values, plus their sum and count (the
  parts of the ratio metric "sum over turns / turns");
* `sum`, `max`: over the session's values; `last`: the last value recorded
  (stream order is time order).

A session without a value of a metric gets NaN (and count 0).

Deduplication: an event id is unique, and a replayed event carries its
session; two events are the same when they have the same session and the
same 64-bit hash of the event id (`outcome_reader.stable_hashes`, the same in
every process that reads a part of the streams; a false match needs two
distinct ids of one session to collide, about 1 in 10^19 for ids not built to
collide). Hashes instead of the id strings keep down the peak memory that
`bench/bench_analysis.py` reports (figures in the README).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis import columns as col
from analysis.metric_specs import MetricSpec
from analysis.outcome_reader import OutcomeArrays
from experiments.metrics import Rollup


def _duplicates(rows: NDArray[np.int32], hashes: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Events whose (session, event id hash) was seen earlier in the stream."""
    if not pd.Index(hashes).has_duplicates:
        return np.zeros(rows.size, dtype=bool)
    return np.asarray(pd.DataFrame({"row": rows, "hash": hashes}).duplicated(keep="first"))


def rollup_metrics(
    outcomes: OutcomeArrays, specs: Sequence[MetricSpec], sessions: pd.Index
) -> tuple[dict[str, NDArray[Any]], NDArray[np.int64], dict[str, Any]]:
    """Per-session metric columns (rows in the order of `sessions`, a unique
    index of session ids), turns per session, and what was dropped. `specs`
    are the metrics `outcomes` was collected for, in the same order."""
    n_sessions = len(sessions)
    session_rows = sessions.get_indexer(pd.Index(outcomes.sessions, dtype="str"))
    rows = session_rows.astype(np.int32)[outcomes.event_session]
    duplicate = _duplicates(rows, outcomes.event_hash)
    keep = (rows >= 0) & ~duplicate
    turns = np.bincount(rows[keep & outcomes.event_turn], minlength=n_sessions).astype(np.int64)
    value_event = outcomes.value_event
    metric = outcomes.value_metric
    value = outcomes.value
    kept = keep[value_event]
    value_row = rows[value_event]
    columns: dict[str, NDArray[Any]] = {}
    for code, spec in enumerate(specs):
        mask = kept & (metric == code)
        columns.update(_rollup(spec, value_row[mask], value[mask], n_sessions))
    dropped = {
        "duplicate_outcomes": int(duplicate.sum()),
        "orphan_outcomes": int(np.count_nonzero(rows < 0)),
        "unregistered_metrics": list(outcomes.unknown_metrics),
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
