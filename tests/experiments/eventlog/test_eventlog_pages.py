"""Pages of stream entries as columns: the same values as the decoded events,
from real XRANGE replies and from hand-made entries of every shape."""

from __future__ import annotations

from itertools import chain

import orjson
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.eventlog import KeyLayout, StreamReader, pages
from experiments.eventlog.pages import AssignmentPage, OutcomePage
from experiments.events import (
    Assignment,
    AssignmentEvent,
    EventDecodeError,
    OutcomeEvent,
    OutcomeKind,
)

SPLIT = Assignment(
    "stt-provider", "3", "deepgram", "deepgram-nova-3", "SPLIT", None, "targetingKey", "s-1",
    "stt/1", (("deepgram", 50), ("assembly", 50)),
)  # fmt: skip
STATIC = Assignment("vad-provider", "1", "silero", "silero", "STATIC", *[None] * 5)
FELL_BACK = Assignment(
    "s2s-provider", "2", "openai", "openai-realtime", "SPLIT", None, "targetingKey", "s-1",
    "s2s/1", (("openai", 80), ("gemini", 20)), "unavailable_in_region", "gemini-live",
)  # fmt: skip


def assignment_event(n: int, *assignments: Assignment) -> AssignmentEvent:
    return AssignmentEvent(
        f"a-{n}", f"s-{n}", f"t-{n % 3}", ("us", "eu")[n % 2], 1_750_000_000_000 + n,
        assignments or (SPLIT, STATIC), {"s2s": n % 2 == 0}, {"plan": "pro", "seats": n},
    )  # fmt: skip


def outcome_event(n: int) -> OutcomeEvent:
    if n % 3 == 2:
        return OutcomeEvent(f"o-{n}", f"s-{n}", "acme", 1_750_000_000_000 + n,
                            OutcomeKind.END, None, (("task_success", 1.0),))  # fmt: skip
    metrics = (("stt_ttfb_ms", 100.0 + n), ("e2e_latency_ms", 900.5))
    return OutcomeEvent(
        f"o-{n}", f"s-{n}", "acme", 1_750_000_000_000 + n, OutcomeKind.TURN, n, metrics
    )


def flat(fields: dict[bytes, bytes] | dict[str, bytes]) -> list[bytes]:
    """An entry's fields as XRANGE replies them: `[field, value, ...]`."""
    pairs = ((k if isinstance(k, bytes) else k.encode(), v) for k, v in fields.items())
    return list(chain.from_iterable(pairs))


def entries(events: list[AssignmentEvent] | list[OutcomeEvent]) -> list[tuple[bytes, list[bytes]]]:
    return [(f"{n + 1}-0".encode(), flat(e.encode())) for n, e in enumerate(events)]


def with_ids(events: list[AssignmentEvent] | list[OutcomeEvent]) -> list[tuple[str, object]]:
    return [(f"{n + 1}-0", e) for n, e in enumerate(events)]


def test_an_outcome_page_holds_the_events_as_columns() -> None:
    events = [outcome_event(n) for n in range(4)]
    page = OutcomePage.decode(entries(events))
    assert len(page) == 4
    assert page.stream_ids == ["1-0", "2-0", "3-0", "4-0"]
    assert page.event_ids == ["o-0", "o-1", "o-2", "o-3"]
    assert page.session_ids == ["s-0", "s-1", "s-2", "s-3"]
    assert page.kinds == [OutcomeKind.TURN, OutcomeKind.TURN, OutcomeKind.END, OutcomeKind.TURN]
    assert page.turns == [0, 1, None, 3]
    assert page.ts_ms == [1_750_000_000_000 + n for n in range(4)]
    assert page.metric_counts == [2, 2, 1, 2]
    assert page.metric_names == [
        "stt_ttfb_ms", "e2e_latency_ms", "stt_ttfb_ms", "e2e_latency_ms", "task_success",
        "stt_ttfb_ms", "e2e_latency_ms",
    ]  # fmt: skip
    assert page.metric_values == [100.0, 900.5, 101.0, 900.5, 1.0, 103.0, 900.5]
    assert page.events() == with_ids(events)
    assert OutcomePage.from_events(with_ids(events)) == page  # type: ignore[arg-type]


def test_an_assignment_page_holds_the_events_as_columns() -> None:
    events = [assignment_event(0), assignment_event(1, FELL_BACK), assignment_event(2, STATIC)]
    page = AssignmentPage.decode(entries(events))
    assert page.session_ids == ["s-0", "s-1", "s-2"]
    assert page.tenant_ids == ["t-0", "t-1", "t-2"]
    assert page.regions == ["us", "eu", "us"]
    assert page.features == [{"s2s": True}, {"s2s": False}, {"s2s": True}]
    assert page.attributes == [{"plan": "pro", "seats": n} for n in range(3)]
    assert page.assignments_of("stt-provider") == [SPLIT, None, None]
    assert page.assignments_of("s2s-provider") == [None, FELL_BACK, None]
    assert page.assignments_of("vad-provider") == [STATIC, None, STATIC]
    assert page.events() == with_ids(events)
    assert AssignmentPage.from_events(with_ids(events)) == page  # type: ignore[arg-type]


def test_an_empty_page_is_empty() -> None:
    assert OutcomePage.decode([]).events() == []
    assert AssignmentPage.decode([]).events() == []


def test_older_and_reordered_entries_are_read_entry_by_entry_with_the_same_values() -> None:
    """An entry without `context` (written before it existed), one with the old
    10-value assignment rows and one with its fields in another order sit in a
    page with current entries: the page falls back to the events' decoders."""
    events = [assignment_event(n) for n in range(4)]
    raw = entries(events)
    old = events[1].encode()
    del old["context"]
    old["assignments"] = orjson.dumps([a.to_row()[:10] for a in events[1].assignments])
    raw[1] = (raw[1][0], flat(old))
    reordered = dict(reversed(list(events[2].encode().items())))
    raw[2] = (raw[2][0], flat(reordered))
    page = AssignmentPage.decode(raw)
    expected = with_ids(events)
    expected[1] = ("2-0", AssignmentEvent(*[getattr(events[1], f) for f in (
        "event_id", "session_id", "tenant_id", "region", "ts_ms", "assignments")]))  # fmt: skip
    assert page.events() == expected


def test_dict_fields_as_a_cluster_client_gives_them_read_the_same() -> None:
    events = [outcome_event(n) for n in range(3)]
    as_dicts = [
        (entry_id, dict(zip(f[0::2], f[1::2], strict=True))) for entry_id, f in entries(events)
    ]
    assert OutcomePage.decode(as_dicts) == OutcomePage.decode(entries(events))  # type: ignore[arg-type]


def test_integer_metric_values_become_floats() -> None:
    fields = outcome_event(0).encode()
    fields[b"metrics"] = b'[["interruptions",2],["mos",4.5]]'
    page = OutcomePage.decode([(b"1-0", flat(fields))])
    assert page.metric_values == [2.0, 4.5]
    assert [type(v) for v in page.metric_values] == [float, float]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (b"metrics", b'[["stt_ttfb_ms"]]'),
        (b"metrics", b'[["stt_ttfb_ms", 1, 2]]'),
        (b"metrics", b"[[1],[2]"),
        (b"metrics", b'[["a",1]],[["b",2]]'),
        (b"metrics", b'[["a","fast"]]'),
        (b"metrics", b'{"a":1}'),
        (b"kind", b"sometimes"),
        (b"ts_ms", b"soon"),
        (b"turn", b"third"),
        (b"type", b"assignment"),
        (b"v", b"2"),
    ],
)
def test_a_malformed_outcome_entry_is_named(field: bytes, value: bytes) -> None:
    raw = entries([outcome_event(n) for n in range(3)])
    fields = raw[1][1]
    fields[fields.index(field) + 1] = value
    with pytest.raises(EventDecodeError) as caught:
        OutcomePage.decode(raw)
    assert caught.value.context["stream_id"] == "2-0"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (b"assignments", b"[[1, 2]]"),
        (b"assignments", b"[1]"),
        (b"assignments", b'{"a": 1}'),
        (b"context", b"[{}]"),
        (b"context", b"[[], {}]"),
        (b"context", b"[{}, {}],[{}, {}]"),
        (b"ts_ms", b"soon"),
        (b"type", b"outcome"),
    ],
)
def test_a_malformed_assignment_entry_is_named(field: bytes, value: bytes) -> None:
    raw = entries([assignment_event(n) for n in range(3)])
    fields = raw[2][1]
    fields[fields.index(field) + 1] = value
    with pytest.raises(EventDecodeError) as caught:
        AssignmentPage.decode(raw)
    assert caught.value.context["stream_id"] == "3-0"


text = st.text(max_size=12)
optional = st.none() | text
assignments = st.builds(
    Assignment, text, text, optional, optional, text, optional, optional, optional, optional,
    st.none() | st.lists(st.tuples(text, st.integers(0, 10_000)), max_size=3).map(tuple),
    optional, optional,
)  # fmt: skip
assignment_events = st.builds(
    AssignmentEvent, text, text, text, text, st.integers(0, 2**53),
    st.lists(assignments, max_size=4).map(tuple),
    st.dictionaries(text, st.booleans(), max_size=2),
    st.dictionaries(text, text | st.integers(-(2**53), 2**53) | st.booleans(), max_size=2),
)  # fmt: skip
outcome_events = st.builds(
    OutcomeEvent, text, text, text, st.integers(0, 2**53), st.sampled_from(OutcomeKind),
    st.none() | st.integers(0, 10_000),
    st.lists(st.tuples(text, st.floats(allow_nan=False, allow_infinity=False)), max_size=4).map(
        tuple
    ),
)  # fmt: skip


@settings(max_examples=200)
@given(st.lists(assignment_events, max_size=6))
def test_any_assignment_events_survive_a_page(events: list[AssignmentEvent]) -> None:
    page = AssignmentPage.decode(entries(events))
    assert page.events() == with_ids(events)
    assert page == AssignmentPage.from_events(with_ids(events))  # type: ignore[arg-type]
    for n, (_, fields) in enumerate(entries(events)):
        assert AssignmentEvent.decode_entry(fields) == events[n]


@settings(max_examples=200)
@given(st.lists(outcome_events, max_size=6))
def test_any_outcome_events_survive_a_page(events: list[OutcomeEvent]) -> None:
    page = OutcomePage.decode(entries(events))
    assert page.events() == with_ids(events)
    assert page == OutcomePage.from_events(with_ids(events))  # type: ignore[arg-type]
    for n, (_, fields) in enumerate(entries(events)):
        assert OutcomeEvent.decode_entry(fields) == events[n]


@pytest.mark.redis
@pytest.mark.parametrize("shards", [1, 3])
def test_the_reader_pages_equal_its_events(
    sync_redis: redis.Redis, prefix: str, shards: int
) -> None:
    keys = KeyLayout(prefix=prefix, shards=shards)
    assigned = [assignment_event(n) for n in range(250)]
    reported = [outcome_event(n) for n in range(250)]
    pipe = sync_redis.pipeline(transaction=False)
    for a, o in zip(assigned, reported, strict=True):
        pipe.xadd(keys.assignment_stream_of(a.session_id), a.encode())  # type: ignore[arg-type]
        pipe.xadd(keys.outcome_stream_of(o.session_id), o.encode())  # type: ignore[arg-type]
    pipe.execute()
    reader = StreamReader(sync_redis, keys=keys)
    for read_events, read_pages in (
        (reader.read_assignments, reader.read_assignment_pages),
        (reader.read_outcomes, reader.read_outcome_pages),
    ):
        batches = list(read_events(batch=64))
        pages = list(read_pages(batch=64))
        assert [len(p) for p in pages] == [len(b) for b in batches] == [64, 64, 64, 58]
        assert [p.events() for p in pages] == batches
    assert {e.session_id for b in reader.read_assignments() for _, e in b} == {
        a.session_id for a in assigned
    }


@pytest.mark.redis
def test_a_reader_leaves_the_client_it_was_given_as_it_was(
    sync_redis: redis.Redis, prefix: str
) -> None:
    """The reader reads raw replies through a second client on the same pool;
    the caller's client still parses XRANGE into dicts."""
    keys = KeyLayout(prefix=prefix)
    sync_redis.xadd(keys.outcome_stream(0), outcome_event(0).encode())  # type: ignore[arg-type]
    reader = StreamReader(sync_redis, keys=keys)
    assert [e for b in reader.read_outcomes() for _, e in b] == [outcome_event(0)]
    [(_, fields)] = sync_redis.xrange(keys.outcome_stream(0))
    assert isinstance(fields, dict)
    assert fields[b"event_id"] == b"o-0"


def test_current_entries_are_read_by_column_not_entry_by_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def entry_by_entry(*args: object) -> None:
        raise AssertionError("decoded entry by entry")

    monkeypatch.setattr(pages, "_decoded", entry_by_entry)
    events = [assignment_event(n) for n in range(3)]
    assert AssignmentPage.decode(entries(events)).events() == with_ids(events)
    outcomes = [outcome_event(n) for n in range(3)]
    assert OutcomePage.decode(entries(outcomes)).events() == with_ids(outcomes)
