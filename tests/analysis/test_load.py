"""load_sessions: streams written to a real Redis through their encodings -> one row per session."""

from __future__ import annotations

import dataclasses
import gc
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis
from synthetic import CSAT, E2E, METRICS, PEAK, SUCCESS, TTFB, Experiment, MemoryEvents, write

from analysis import analyze, load_sessions
from analysis import columns as col
from analysis import load as analysis_load
from analysis.outcome_reader import stable_hashes
from experiments.eventlog import KeyLayout, StreamReader
from experiments.events import (
    Assignment,
    AssignmentEvent,
    EventDecodeError,
    OutcomeEvent,
    OutcomeKind,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
WEIGHTS = (("a", 50), ("b", 50))
T0 = 1_767_225_600_000


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, socket_timeout=5) as conn:
        yield conn


def split(variant: str, session_id: str, reason: str = "SPLIT") -> Assignment:
    routed = reason == "SPLIT"
    return Assignment(
        "f", "v1", variant, variant, reason, "GENERAL" if reason == "ERROR" else None,
        "targetingKey" if routed else None, session_id if routed else None,
        "f/1" if routed else None, WEIGHTS if routed else None,
    )  # fmt: skip


def assignment(session_id: str, variant: str, ts: int, reason: str = "SPLIT") -> AssignmentEvent:
    other = Assignment("voice-mode", "v1", "pipeline", "pipeline", "STATIC", *[None] * 5)
    assignments = (other, split(variant, session_id, reason))
    return AssignmentEvent(f"a-{session_id}", session_id, "acme", "eu", T0 + ts, assignments)


def outcome(session_id: str, n: int, kind: OutcomeKind, **metrics: float) -> OutcomeEvent:
    turn = n if kind is OutcomeKind.TURN else None
    pairs = tuple(metrics.items())
    return OutcomeEvent(f"o-{session_id}-{n}", session_id, "acme", T0 + n, kind, turn, pairs)


def load(redis_url: str, prefix: str, **kwargs: object) -> pd.DataFrame:
    metrics = (TTFB, E2E, SUCCESS, CSAT, PEAK)
    return load_sessions(redis_url, "f", key_prefix=prefix, metrics=metrics, **kwargs)  # type: ignore[arg-type]


def test_turns_roll_up_per_the_registry(client: redis.Redis, redis_url: str, prefix: str) -> None:
    turn, end = OutcomeKind.TURN, OutcomeKind.END
    outcomes = [
        outcome("s1", 1, turn, stt_ttfb_ms=100.0, peak_ms=5.0),
        outcome("s1", 2, turn, stt_ttfb_ms=300.0, peak_ms=9.0),
        outcome("s1", 3, turn, stt_ttfb_ms=200.0, peak_ms=7.0),
        outcome("s1", 4, end, task_success=0.0, csat=2.0),
        outcome("s1", 5, end, task_success=1.0, csat=4.0),
        outcome("s2", 1, turn, stt_ttfb_ms=50.0),
    ]
    write(
        client,
        KeyLayout(prefix=prefix),
        [assignment("s1", "a", 0), assignment("s2", "b", 1)],
        outcomes,
    )
    df = load(redis_url, prefix).set_index(col.SESSION_ID)
    assert df.loc["s1", "stt_ttfb_ms"] == pytest.approx(200.0)  # mean over turns
    assert df.loc["s1", col.sum_column("stt_ttfb_ms")] == pytest.approx(600.0)
    assert df.loc["s1", col.count_column("stt_ttfb_ms")] == 3
    assert df.loc["s1", "peak_ms"] == 9.0  # max
    assert df.loc["s1", "task_success"] == 1.0  # last
    assert df.loc["s1", "csat"] == 4.0
    assert df.loc["s1", col.TURNS] == 3
    assert df.loc["s2", "stt_ttfb_ms"] == 50.0
    assert np.isnan(df.loc["s2", "task_success"])  # no value: NaN, not 0
    assert df.loc["s2", col.count_column("e2e_latency_ms")] == 0


def test_a_duplicated_event_id_counts_once(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    first = outcome("s1", 1, OutcomeKind.TURN, stt_ttfb_ms=100.0)
    second = outcome("s1", 2, OutcomeKind.TURN, stt_ttfb_ms=300.0)
    events = [assignment("s1", "a", 0), assignment("s1", "a", 0)]  # a replayed assignment
    write(client, KeyLayout(prefix=prefix), events, [first, second, first])
    df = load(redis_url, prefix)
    assert len(df) == 1
    assert df["stt_ttfb_ms"].iloc[0] == pytest.approx(200.0)
    assert df.attrs["duplicate_outcomes"] == 1
    assert df.attrs["duplicate_assignments"] == 1


def test_static_and_fallback_sessions_are_marked_not_routed_by_the_split(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    events = [
        assignment("s1", "a", 0),
        assignment("s2", "a", 1, reason="TARGETING_MATCH"),
        assignment("s3", "a", 2, reason="ERROR"),
        assignment("s4", "b", 3, reason="DEFAULT"),
    ]
    write(client, KeyLayout(prefix=prefix), events, [])
    df = load(redis_url, prefix).set_index(col.SESSION_ID)
    assert df[col.ROUTING].astype(str).to_dict() == {
        "s1": "split", "s2": "static", "s3": "fallback", "s4": "static",
    }  # fmt: skip
    assert df[col.ROUTED_BY_SPLIT].to_dict() == {"s1": True, "s2": False, "s3": False, "s4": False}
    assert df.loc["s1", col.SPLIT_WEIGHTS] == '{"a":50,"b":50}'
    assert pd.isna(df.loc["s2", col.SPLIT_ID])


def test_a_split_session_the_router_fell_back_from_is_fallback_not_its_cohort(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    fell_back = assignment("s2", "b", 1)
    flag = dataclasses.replace(
        fell_back.assignments[1], fallback="unavailable_in_region", used="google/gemini-live"
    )
    events = [assignment("s1", "a", 0), dataclasses.replace(fell_back, assignments=(flag,))]
    write(client, KeyLayout(prefix=prefix), events, [])
    df = load(redis_url, prefix).set_index(col.SESSION_ID)
    assert df[col.ROUTING].astype(str).to_dict() == {"s1": "split", "s2": "fallback"}
    assert df[col.ROUTED_BY_SPLIT].to_dict() == {"s1": True, "s2": False}
    assert pd.isna(df.loc["s1", col.FALLBACK])
    assert df.loc["s2", col.FALLBACK] == "unavailable_in_region"
    assert isinstance(df[col.FALLBACK].dtype, pd.CategoricalDtype)


def test_features_and_attributes_become_columns(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    with_context = dataclasses.replace(
        assignment("s1", "a", 0),
        features={"beta": True},
        attributes={"plan": "pro", "seats": 12, "vip": True},
    )
    other = dataclasses.replace(
        assignment("s2", "b", 1), features={"beta": False}, attributes={"plan": "free", "vip": 1}
    )
    events = [with_context, other, assignment("s3", "a", 2)]  # s3: no context
    write(client, KeyLayout(prefix=prefix), events, [])
    df = load(redis_url, prefix).set_index(col.SESSION_ID)
    assert df["feature.beta"].dtype == "boolean"
    assert df["feature.beta"].tolist() == [True, False, pd.NA]
    assert df["attr.plan"].astype(object).tolist() == ["pro", "free", np.nan]
    assert df["attr.seats"].astype(object).tolist() == ["12", np.nan, np.nan]
    assert df["attr.vip"].astype(object).tolist() == ["true", "1", np.nan]  # True is not 1
    assert all(isinstance(df[c].dtype, pd.CategoricalDtype) for c in df if c.startswith("attr."))
    assert df.columns[-4:].tolist() == ["feature.beta", "attr.plan", "attr.seats", "attr.vip"]


def test_fallback_sessions_stay_out_of_the_cohorts_and_attributes_segment_the_effects() -> None:
    assignments, outcomes = Experiment(sessions=600, seed=4).events()
    events = []
    for i, event in enumerate(assignments):
        (flag,) = event.assignments
        if i % 5 == 0:  # the router could not use the variant served
            flag = dataclasses.replace(flag, fallback="unavailable_in_region", used="deepgram")
        plan = "pro" if i % 2 else "free"
        events.append(dataclasses.replace(event, assignments=(flag,), attributes={"plan": plan}))
    df = load_sessions(MemoryEvents(events, outcomes), "stt-provider", metrics=METRICS)
    fell_back = df[col.FALLBACK].notna()
    assert fell_back.sum() == 120
    assert (df.loc[fell_back, col.ROUTING] == "fallback").all()
    assert (df.loc[~fell_back, col.ROUTING] == "split").all()

    result = analyze(df, segment_by="attr.plan")
    (period,) = result.periods
    assert sum(c.n for c in period.cohorts if c.metric == "stt_ttfb_ms") == 480
    assert {e.routing for e in result.excluded} == {"fallback"}
    assert sum(e.sessions for e in result.excluded) == 120
    split = df[~fell_back]
    assert {(s.attribute, s.level, s.sessions) for s in period.segments} == {
        ("attr.plan", plan, int((split["attr.plan"] == plan).sum())) for plan in ("free", "pro")
    }


def test_sessions_before_the_first_split_assignment_are_the_pre_period(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    pre = AssignmentEvent("a-p", "p", "acme", "eu", T0 - 10, ())  # the flag did not exist yet
    events = [pre, assignment("s0", "a", -5, reason="STATIC"), assignment("s1", "a", 0)]
    write(
        client,
        KeyLayout(prefix=prefix),
        events,
        [outcome("p", 1, OutcomeKind.TURN, stt_ttfb_ms=9.0)],
    )
    df = load(redis_url, prefix).set_index(col.SESSION_ID)
    assert df[col.ROUTING].astype(str).to_dict() == {
        "p": "pre_period",
        "s0": "pre_period",
        "s1": "split",
    }
    assert df.loc["p", "stt_ttfb_ms"] == 9.0
    assert df.attrs["experiment_start"] == pd.Timestamp(T0, unit="ms", tz="UTC").isoformat()


def test_sessions_of_other_flags_after_the_start_are_left_out(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    late = AssignmentEvent("a-x", "x", "acme", "eu", T0 + 50, ())
    write(client, KeyLayout(prefix=prefix), [assignment("s1", "a", 0), late], [])
    assert load(redis_url, prefix)[col.SESSION_ID].tolist() == ["s1"]


def test_outcomes_of_unknown_sessions_and_unregistered_metrics_are_reported(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    outcomes = [
        outcome("s1", 1, OutcomeKind.TURN, stt_ttfb_ms=1.0, made_up=3.0),
        outcome("ghost", 1, OutcomeKind.TURN, stt_ttfb_ms=1.0),
    ]
    write(client, KeyLayout(prefix=prefix), [assignment("s1", "a", 0)], outcomes)
    df = load(redis_url, prefix)
    assert df.attrs["orphan_outcomes"] == 1
    assert df.attrs["unregistered_metrics"] == ["made_up"]
    assert "made_up" not in df


def test_tenant_bucketing_makes_the_tenant_the_unit() -> None:
    experiment = Experiment(
        sessions=60, flag_key="tts-provider", bucket_unit="tenant_id", split_id="tts/1"
    )
    df = load_sessions(MemoryEvents(*experiment.events()), "tts-provider", metrics=METRICS)
    assert (df[col.UNIT_ID] == df[col.TENANT_ID].astype(str)).all()
    assert set(df[col.BUCKET_UNIT].astype(str)) == {"tenant_id"}


def test_session_bucketing_makes_the_session_the_unit() -> None:
    df = load_sessions(
        MemoryEvents(*Experiment(sessions=30).events()), "stt-provider", metrics=METRICS
    )
    assert (df[col.UNIT_ID] == df[col.SESSION_ID]).all()


def test_columns_and_dtypes_are_lean() -> None:
    df = load_sessions(
        MemoryEvents(*Experiment(sessions=50).events()), "stt-provider", metrics=METRICS
    )
    assert list(df.columns[: len(col.SESSION_COLUMNS)]) == list(col.SESSION_COLUMNS)
    categorical = (col.TENANT_ID, col.REGION, col.COHORT, col.REASON, col.SPLIT_ID, col.ROUTING)
    assert all(isinstance(df[name].dtype, pd.CategoricalDtype) for name in categorical)
    assert str(df[col.TS].dtype) == "datetime64[ms, UTC]"
    assert df.attrs["metrics"][0] == {
        "name": "stt_ttfb_ms", "type": "latency", "unit": "ms", "direction": "lower_is_better",
        "rollup": "mean", "guardrail": False, "margin": None,
    }  # fmt: skip


def test_shards_are_read_back_through_a_url(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    keys = KeyLayout(prefix=prefix, shards=3)
    assignments, outcomes = Experiment(sessions=90).events()
    write(client, keys, assignments, outcomes)
    assert sum(client.xlen(s) for s in keys.outcome_streams()) == len(outcomes)
    df = load_sessions(redis_url, "stt-provider", key_prefix=prefix, shards=3, metrics=METRICS)
    assert len(df) == 90
    assert (df[col.TURNS] == 3).all()


def test_a_reader_can_be_passed_in(client: redis.Redis, prefix: str) -> None:
    keys = KeyLayout(prefix=prefix)
    write(
        client,
        keys,
        [assignment("s1", "a", 0)],
        [outcome("s1", 1, OutcomeKind.TURN, stt_ttfb_ms=4.0)],
    )
    with StreamReader(client, keys=keys) as reader:
        df = load_sessions(reader, "f", metrics=[TTFB], batch=1)
    assert df["stt_ttfb_ms"].tolist() == [4.0]


def test_the_registry_is_the_default(client: redis.Redis, redis_url: str, prefix: str) -> None:
    write(client, KeyLayout(prefix=prefix), [assignment("s1", "a", 0)], [])
    df = load_sessions(redis_url, "f", key_prefix=prefix)
    assert {"stt_ttfb_ms", "e2e_latency_ms", "task_success", "csat"} <= set(df.columns)


def test_an_empty_log_gives_an_empty_frame(redis_url: str, prefix: str) -> None:
    df = load(redis_url, prefix)
    assert df.empty
    assert col.COHORT in df
    assert df.attrs["experiment_start"] is None


@pytest.mark.parametrize("pause_gc", [True, False])
def test_the_gc_is_left_as_it_was(pause_gc: bool) -> None:
    assert gc.isenabled()
    events = MemoryEvents(*Experiment(sessions=20).events())
    df = load_sessions(events, "stt-provider", metrics=METRICS, pause_gc=pause_gc)
    assert len(df) == 20
    assert gc.isenabled()


def test_reading_the_outcomes_in_a_second_process_gives_the_same_frame(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    keys = KeyLayout(prefix=prefix, shards=2)
    assignments, outcomes = Experiment(sessions=120).events()
    extra = [
        outcomes[0],  # a replayed event
        outcome("ghost", 1, OutcomeKind.TURN, stt_ttfb_ms=1.0, made_up=2.0),
    ]
    write(client, keys, assignments, [*outcomes, *extra])
    frames = [
        load_sessions(
            redis_url,
            "stt-provider",
            key_prefix=prefix,
            shards=2,
            metrics=METRICS,
            parallel=parallel,
        )
        for parallel in (False, True)
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert frames[0].attrs == frames[1].attrs
    assert frames[1].attrs["duplicate_outcomes"] == 1
    assert frames[1].attrs["orphan_outcomes"] == 1
    assert frames[1].attrs["unregistered_metrics"] == ["made_up"]
    assert len(frames[1]) == 120


def test_an_error_met_in_the_outcome_process_is_raised_to_the_caller(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    keys = KeyLayout(prefix=prefix)
    write(client, keys, [assignment("s1", "a", 0)], [])
    fields = outcome("s1", 1, OutcomeKind.TURN, stt_ttfb_ms=4.0).encode()
    fields[b"kind"] = b"sometimes"
    bad_id = client.xadd(keys.outcome_stream(0), fields)  # type: ignore[arg-type]
    with pytest.raises(EventDecodeError, match="sometimes") as caught:
        load(redis_url, prefix, parallel=True)
    assert caught.value.context["stream_id"] == bad_id.decode()


def test_by_default_a_second_process_reads_only_large_outcome_streams(
    client: redis.Redis, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[bool] = []
    in_worker = analysis_load.outcomes_in_worker

    def recording(*args: Any, **kwargs: Any) -> Any:
        started.append(True)
        return in_worker(*args, **kwargs)

    monkeypatch.setattr(analysis_load, "outcomes_in_worker", recording)
    monkeypatch.setattr(analysis_load.os, "cpu_count", lambda: 2)
    write(
        client,
        KeyLayout(prefix=prefix),
        [assignment("s1", "a", 0)],
        [outcome("s1", n, OutcomeKind.TURN, stt_ttfb_ms=4.0) for n in (1, 2, 3)],
    )
    monkeypatch.setattr(analysis_load, "PARALLEL_MIN_OUTCOMES", 4)
    assert load(redis_url, prefix)[col.TURNS].tolist() == [3]
    assert started == []
    monkeypatch.setattr(analysis_load, "PARALLEL_MIN_OUTCOMES", 3)
    assert load(redis_url, prefix)[col.TURNS].tolist() == [3]
    assert started == [True]
    monkeypatch.setattr(analysis_load.os, "cpu_count", lambda: 1)
    assert load(redis_url, prefix)[col.TURNS].tolist() == [3]
    assert started == [True]


def test_a_second_process_needs_a_url() -> None:
    events = MemoryEvents(*Experiment(sessions=5).events())
    with pytest.raises(ValueError, match="parallel=True needs source to be a Redis URL"):
        load_sessions(events, "stt-provider", metrics=METRICS, parallel=True)


def test_a_second_process_with_no_outcomes_to_read(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    write(client, KeyLayout(prefix=prefix), [assignment("s1", "a", 0)], [])
    df = load(redis_url, prefix, parallel=True)
    assert df[col.TURNS].tolist() == [0]
    assert np.isnan(df["stt_ttfb_ms"].iloc[0])


def test_outcomes_read_in_two_parts_are_joined_in_stream_order_and_deduplicated(
    client: redis.Redis, redis_url: str, prefix: str
) -> None:
    """The second process reads the first part of the outcome streams' time
    span, this one the rest; a replay in the second part of an event of the
    first is still a duplicate, and `last` takes the value recorded last."""
    keys = KeyLayout(prefix=prefix)
    write(client, keys, [assignment(f"s{i}", "ab"[i % 2], i) for i in range(20)], [])
    events = [
        outcome(f"s{i % 20}", i, OutcomeKind.TURN, stt_ttfb_ms=float(i), csat=float(1 + i % 5))
        for i in range(200)
    ]
    events.append(events[3])  # a replay, at the end of the stream
    for n, event in enumerate(events):
        client.xadd(keys.outcome_stream(0), event.encode(), id=f"{1_000 + n * 1_000}-0")  # type: ignore[arg-type]
    sequential = load(redis_url, prefix, parallel=False)
    parallel = load(redis_url, prefix, parallel=True)
    pd.testing.assert_frame_equal(sequential, parallel)
    assert parallel.attrs == sequential.attrs
    assert parallel.attrs["duplicate_outcomes"] == 1
    by_session = parallel.set_index(col.SESSION_ID)
    assert by_session.loc["s3", col.TURNS] == 10
    assert by_session.loc["s3", "csat"] == float(1 + 183 % 5)  # the last one recorded


def test_stable_hashes_agree_across_processes_and_tell_ids_apart() -> None:
    ids = [f"o-{i}" for i in range(50_000)] + ["", "é" * 129, "o-1\u2603", "a" * 7, "a" * 8]
    hashes = stable_hashes(ids)
    assert len(set(hashes.tolist())) == len(ids)
    assert stable_hashes(ids[:3]).tolist() == hashes[:3].tolist()  # whatever it is hashed with
    assert stable_hashes(ids[-2:][::-1]).tolist() == hashes[-2:][::-1].tolist()
    code = (
        "import sys; from analysis.outcome_reader import stable_hashes; "
        "print(stable_hashes(['o-1', 'é' * 129, '']).tolist())"
    )
    for _ in range(2):  # each interpreter salts hash() differently
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == str(stable_hashes(["o-1", "é" * 129, ""]).tolist())
    assert stable_hashes([]).size == 0
