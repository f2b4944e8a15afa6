"""Streams -> pandas: one row per session of a flag, with its cohort and rolled-up metrics.

`load_sessions` reads the assignment and outcome streams through the reader API
in pages of columns (`StreamReader.read_assignment_pages` / `read_outcome_pages`;
a reader that only gives events works too) and builds columns from arrays (no
per-row frames, dicts or event objects):

* assignments: deduplicated by event id, then one row per session (the first
  recorded); the flag's assignment gives cohort, reason, split id, weights,
  bucketing unit and flag version. `routing` says whether the split randomised
  the session, a static rule or the default served it, or the flag fell back
  (flag in error or disabled, or the router could not use the variant served
  and routed the catalog default: the assignment's `fallback`, kept in the
  `fallback` column); sessions before the first split assignment are kept as
  `pre_period` (CUPED covariates), even when the flag was not evaluated for them.
* context: each feature switch and attribute given when the session was
  created becomes a column, `feature.<name>` and `attr.<name>` (missing where
  a session did not give it), to segment by.
* outcomes: deduplicated by event id within a session, joined on the session,
  rolled up per the metric registry (see `analysis.rollups`).

Column names are in `analysis.columns`; `df.attrs` records the flag key, the
metric specs, the experiment start and what was dropped (duplicates, outcomes
of unknown sessions, unregistered metric names).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, Protocol, cast

import pandas as pd

from analysis import columns as col
from analysis.assignment_columns import AssignmentColumns
from analysis.metric_specs import MetricSpec, metric_specs
from analysis.outcome_reader import OutcomeArrays, read_outcomes
from analysis.outcome_worker import PARALLEL_MIN_OUTCOMES, outcomes_in_worker
from analysis.rollups import rollup_metrics
from analysis.targeting import flag_document
from experiments.eventlog import (
    DEFAULT_PREFIX,
    AssignmentPage,
    KeyLayout,
    StreamPosition,
    StreamReader,
)
from experiments.events import AssignmentEvent, OutcomeEvent
from experiments.flags.model import FlagDefinition
from experiments.performance import gc_paused


class SessionEventReader(Protocol):
    """What the loader reads: both streams in batches of `(stream_id, event)`, oldest first."""

    def read_assignments(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, AssignmentEvent]]]: ...

    def read_outcomes(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, OutcomeEvent]]]: ...


def load_sessions(
    source: str | SessionEventReader,
    flag_key: str,
    *,
    key_prefix: str = DEFAULT_PREFIX,
    shards: int = 1,
    since: StreamPosition = "0-0",
    batch: int = 10_000,
    metrics: Iterable[Any] | None = None,
    flag: Mapping[str, Any] | FlagDefinition | None = None,
    pause_gc: bool = True,
    parallel: bool | None = None,
) -> pd.DataFrame:
    """One row per session of `flag_key` (see `analysis.columns`), metrics rolled up.

    `source` is a Redis URL (read with `StreamReader` under `key_prefix` and
    `shards`) or a reader. `since` applies to both streams. `metrics` are
    registry entries (default: the shipped registry's metrics). `flag` is the
    flag's flagd definition, kept in `df.attrs["flag"]` for `analyze` (the
    control in its metadata, the targeting change of a recommendation).
    `pause_gc` pauses the cyclic GC of the whole process while reading
    (`experiments.performance.gc_paused`): the pages read hold millions of
    containers the GC tracks, and the collections their allocation triggers
    slow loading down several times (`bench/bench_analysis.py`; figures in the
    README); nothing here builds reference cycles. A server that must keep
    collecting can turn it off.

    `parallel`: share the reading with a second process (started with `spawn`,
    so it is safe in threaded programs and notebooks): it reads the first part
    of the outcome streams while this one reads the assignments and then the
    rest of the outcomes, the split chosen so that both have about the same
    work (decoding is CPU-bound). It needs `source` to be a URL. None (the
    default) decides: parallel when the machine has two cores or more and the
    outcome streams hold at least `PARALLEL_MIN_OUTCOMES` entries (below that,
    starting the process costs more than it saves).
    """
    specs = metric_specs(default_metrics() if metrics is None else metrics)
    names = [spec.name for spec in specs]
    with gc_paused() if pause_gc else nullcontext():
        if not isinstance(source, str):
            if parallel:
                raise ValueError("parallel=True needs source to be a Redis URL, not a reader")
            return _load(source, flag_key, specs, since=since, batch=batch, flag=flag)
        keys = KeyLayout(prefix=key_prefix, shards=shards)
        with StreamReader.from_url(source, keys=keys) as reader:
            outcome_count = 0 if parallel is False else reader.count_outcomes()
            if parallel is None:
                parallel = (os.cpu_count() or 1) > 1 and outcome_count >= PARALLEL_MIN_OUTCOMES
            span = reader.outcome_time_span() if parallel else None
            if span is None:
                return _load(reader, flag_key, specs, since=since, batch=batch, flag=flag)
            with outcomes_in_worker(
                reader,
                source,
                since,
                batch,
                names,
                span=span,
                assignments=reader.count_assignments(),
                outcomes=outcome_count,
            ) as outcomes:
                return _load(
                    reader, flag_key, specs, since=since, batch=batch, flag=flag, outcomes=outcomes
                )


def default_metrics() -> tuple[Any, ...]:
    """The shipped metric registry's metrics (`experiments.metrics`)."""
    from experiments.metrics import load_default_registry

    return tuple(load_default_registry())


def _load(
    reader: SessionEventReader,
    flag_key: str,
    specs: Sequence[MetricSpec],
    *,
    since: StreamPosition,
    batch: int,
    flag: Mapping[str, Any] | FlagDefinition | None,
    outcomes: Callable[[], OutcomeArrays] | None = None,
) -> pd.DataFrame:
    """The frame; `outcomes` gives the outcome arrays when another process read
    them, else they are read from `reader` after the assignments."""
    sessions = AssignmentColumns(flag_key)
    for page in _assignment_pages(reader, since, batch):
        sessions.add(page)
    frame, start = sessions.frame()
    context = sessions.context_frame(frame.index)
    if outcomes is None:
        arrays = read_outcomes(reader, [spec.name for spec in specs], since, batch)
    else:
        arrays = outcomes()
    metric_columns, turns, dropped = rollup_metrics(arrays, specs, pd.Index(frame[col.SESSION_ID]))
    frame[col.TURNS] = turns
    frame = pd.concat([frame, pd.DataFrame(metric_columns, index=frame.index), context], axis=1)
    frame.attrs.update(
        flag_key=flag_key,
        flag=flag_document(flag),
        metrics=[spec.to_dict() for spec in specs],
        experiment_start=None if start is None else start.isoformat(),
        duplicate_assignments=sessions.duplicates,
        **dropped,
    )
    return frame


def _assignment_pages(
    reader: SessionEventReader, since: StreamPosition, batch: int
) -> Iterator[AssignmentPage]:
    """The reader's pages of columns (`StreamReader.read_assignment_pages`), or
    pages made of its events when it has no pages."""
    read_pages = getattr(reader, "read_assignment_pages", None)
    if read_pages is not None:
        return cast("Iterator[AssignmentPage]", read_pages(since=since, batch=batch))
    return map(AssignmentPage.from_events, reader.read_assignments(since=since, batch=batch))
