"""Synthetic experiments as assignment and outcome events, for the analysis tests.

`Experiment` describes one flag's split and the metrics' true effects;
`events()` gives the events a voxroute deployment would have recorded, to be
written to a real Redis through their stream encodings (`write`) or read
from memory (`MemoryEvents`, a fake of the reader API).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from experiments.eventlog import KeyLayout, StreamPosition
from experiments.events import Assignment, AssignmentEvent, OutcomeEvent, OutcomeKind
from experiments.metrics import Direction, Metric, MetricType, Rollup

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000
STT_WEIGHTS = (("deepgram-nova-3", 50), ("assemblyai-universal", 50))
TTS_WEIGHTS = (("elevenlabs-flash", 50), ("cartesia-sonic", 50))

TTFB = Metric("stt_ttfb_ms", MetricType.LATENCY, "ms", Direction.LOWER, Rollup.MEAN)
E2E = Metric(
    "e2e_latency_ms", MetricType.LATENCY, "ms", Direction.LOWER, Rollup.MEAN,
    guardrail=True, non_inferiority_margin=0.05,
)  # fmt: skip
INTERRUPTIONS = Metric("interruptions", MetricType.COUNT, "n", Direction.LOWER, Rollup.SUM)
SUCCESS = Metric("task_success", MetricType.PROPORTION, "session", Direction.HIGHER, Rollup.LAST)
CSAT = Metric("csat", MetricType.CONTINUOUS, "score", Direction.HIGHER, Rollup.LAST)
PEAK = Metric("peak_ms", MetricType.LATENCY, "ms", Direction.LOWER, Rollup.MAX)
METRICS = (TTFB, E2E, INTERRUPTIONS, SUCCESS)


@dataclass
class Experiment:
    """One flag's split over `sessions` sessions spread over `days` days.

    `effects` adds to a metric's turn values in a variant (per region when
    keyed `(variant, region)`); `tenant_sd` gives every tenant a lasting
    offset on latencies (what CUPED's pre-period covariate captures);
    `static_share` of the sessions are routed by a rule instead of the split
    and `fallback_share` fall back; `pre_sessions` come before the split.
    """

    sessions: int = 2000
    flag_key: str = "stt-provider"
    weights: tuple[tuple[str, int], ...] = STT_WEIGHTS
    bucket_unit: str = "targetingKey"
    split_id: str = "stt-provider/abc123"
    flag_version: str = "v1"
    regions: tuple[str, ...] = ("us", "eu")
    tenants: int = 40
    turns: int = 3
    days: float = 7.0
    start_ms: int = START_MS
    effects: Mapping[object, Mapping[str, float]] = field(default_factory=dict)
    tenant_sd: float = 0.0
    noise_sd: float = 40.0
    static_share: float = 0.0
    fallback_share: float = 0.0
    pre_sessions: int = 0
    drop: Mapping[str, float] = field(default_factory=dict)
    seed: int = 1
    prefix: str = "s"

    def events(self) -> tuple[list[AssignmentEvent], list[OutcomeEvent]]:
        rng = np.random.default_rng(self.seed)
        offsets = rng.normal(0.0, self.tenant_sd, size=self.tenants)
        assignments: list[AssignmentEvent] = []
        outcomes: list[OutcomeEvent] = []
        total = self.pre_sessions + self.sessions
        for i in range(total):
            pre = i < self.pre_sessions
            session = self._session(i, pre, rng, offsets)
            if session is not None:
                assignments.append(session[0])
                outcomes.extend(session[1])
        return assignments, outcomes

    def _variant(self, rng: np.random.Generator, tenant: int) -> str:
        names = [v for v, _ in self.weights]
        p = np.array([w for _, w in self.weights], dtype=float)
        if self.bucket_unit == "tenant_id":
            return names[int(np.searchsorted(np.cumsum(p) / p.sum(), (tenant * 0.618) % 1.0))]
        return str(rng.choice(names, p=p / p.sum()))

    def _session(
        self, i: int, pre: bool, rng: np.random.Generator, offsets: np.ndarray
    ) -> tuple[AssignmentEvent, list[OutcomeEvent]] | None:
        sid, tenant = f"{self.prefix}{i:06d}", int(rng.integers(self.tenants))
        region = self.regions[int(rng.integers(len(self.regions)))]
        span = self.days * DAY_MS / max(self.sessions, 1)
        ts = self.start_ms + int((i - self.pre_sessions) * span)
        variant = self._variant(rng, tenant)
        draw = rng.random()
        if pre:  # before the experiment everyone had the control
            variant = self.weights[0][0]
            assignment = self._assignment(variant, "STATIC", None, sid, tenant)
        elif draw < self.static_share:
            variant = self.weights[0][0]
            assignment = self._assignment(variant, "TARGETING_MATCH", None, sid, tenant)
        elif draw < self.static_share + self.fallback_share:
            variant = self.weights[0][0]
            assignment = self._assignment(variant, "ERROR", "GENERAL", sid, tenant)
        else:
            assignment = self._assignment(variant, "SPLIT", None, sid, tenant)
            if rng.random() < self.drop.get(variant, 0.0):
                return None
        event = AssignmentEvent(f"a-{sid}", sid, f"t{tenant}", region, ts, (assignment,))
        base = OutcomeEvent(sid, sid, f"t{tenant}", ts, OutcomeKind.END, None, ())
        return event, self._outcomes(base, variant, region, rng, offsets[tenant])

    def _assignment(
        self, variant: str, reason: str, error: str | None, sid: str, tenant: int
    ) -> Assignment:
        split = reason == "SPLIT"
        key = sid if self.bucket_unit == "targetingKey" else f"{self.flag_key}t{tenant}"
        return Assignment(
            self.flag_key, self.flag_version, variant, variant, reason, error,
            self.bucket_unit if split else None, key if split else None,
            self.split_id if split else None, self.weights if split else None,
        )  # fmt: skip

    def _effect(self, variant: str, region: str, metric: str) -> float:
        return self.effects.get(variant, {}).get(metric, 0.0) + self.effects.get(
            (variant, region), {}
        ).get(metric, 0.0)

    def _outcomes(
        self, base: OutcomeEvent, variant: str, region: str, rng: np.random.Generator, offset: float
    ) -> list[OutcomeEvent]:
        sid, tenant, ts = base.session_id, base.tenant_id, base.ts_ms

        def value(metric: str, base: float) -> float:
            noise = rng.normal(0.0, self.noise_sd)
            return float(max(0.0, base + offset + self._effect(variant, region, metric) + noise))

        events = []
        for turn in range(1, self.turns + 1):
            metrics = (
                ("stt_ttfb_ms", value("stt_ttfb_ms", 300.0)),
                ("e2e_latency_ms", value("e2e_latency_ms", 900.0)),
                ("interruptions", float(rng.random() < 0.2)),
            )
            kind = OutcomeKind.TURN
            events.append(
                OutcomeEvent(f"o-{sid}-{turn}", sid, tenant, ts + turn, kind, turn, metrics)
            )
        rate = 0.6 + self._effect(variant, region, "task_success")
        success = float(rng.random() < rate)
        events.append(
            OutcomeEvent(f"o-{sid}-end", sid, tenant, ts + 99, OutcomeKind.END, None,
                         (("task_success", success),))
        )  # fmt: skip
        return events


def periods(*parts: Experiment) -> tuple[list[AssignmentEvent], list[OutcomeEvent]]:
    """The events of consecutive experiments (give them distinct `prefix`es and starts)."""
    assignments: list[AssignmentEvent] = []
    outcomes: list[OutcomeEvent] = []
    for part in parts:
        a, o = part.events()
        assignments.extend(a)
        outcomes.extend(o)
    return assignments, outcomes


def write(
    client: redis.Redis,
    keys: KeyLayout,
    assignments: Sequence[AssignmentEvent],
    outcomes: Sequence[OutcomeEvent],
) -> None:
    """XADD every event through its stream encoding, pipelined, each to its session's shard."""
    pipe = client.pipeline(transaction=False)
    for event in assignments:
        pipe.xadd(keys.assignment_stream_of(event.session_id), event.encode())
    for outcome in outcomes:
        pipe.xadd(keys.outcome_stream_of(outcome.session_id), outcome.encode())
    pipe.execute()


class MemoryEvents:
    """A fake of the reader API over event lists (stream ids are list positions)."""

    def __init__(
        self, assignments: Sequence[AssignmentEvent], outcomes: Sequence[OutcomeEvent]
    ) -> None:
        self.assignments, self.outcomes = list(assignments), list(outcomes)

    def read_assignments(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, AssignmentEvent]]]:
        return _batches(self.assignments, batch)

    def read_outcomes(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, OutcomeEvent]]]:
        return _batches(self.outcomes, batch)


def _batches(events: Sequence[Any], batch: int) -> Iterator[list[tuple[str, Any]]]:
    entries = [(f"{i + 1}-0", e) for i, e in enumerate(events)]
    for first in range(0, len(entries), batch):
        yield entries[first : first + batch]
