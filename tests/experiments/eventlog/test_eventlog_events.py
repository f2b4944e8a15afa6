"""Assignment events and their stream encoding."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from experiments.events import (
    Assignment,
    AssignmentEvent,
    EventDecodeError,
    OutcomeEvent,
    OutcomeKind,
)

SPLIT = Assignment(
    flag_key="stt-provider",
    flag_version="3",
    variant="deepgram",
    value="deepgram-nova-3",
    reason="SPLIT",
    error_code=None,
    bucket_unit="session",
    bucket_key="s-1",
    split_id="stt-2025-06",
    split_weights=(("deepgram", 50), ("whisper", 50)),
)
DEFAULTED = Assignment("tts-provider", "1", None, None, "ERROR", "FLAG_NOT_FOUND", *[None] * 4)
FELL_BACK = Assignment(
    "s2s-provider", "2", "openai", "openai-realtime", "SPLIT", None, "session", "s-1",
    "s2s/1", (("openai", 50), ("gemini", 50)), "unavailable_in_region", "gemini-live",
)  # fmt: skip


def event(*assignments: Assignment, **context: dict[str, object]) -> AssignmentEvent:
    return AssignmentEvent(
        "e-1",
        "s-1",
        "acme",
        "eu-west",
        1_750_000_000_123,
        assignments,
        **context,  # type: ignore[arg-type]
    )


WITH_CONTEXT = event(
    FELL_BACK, features={"beta": True}, attributes={"plan": "pro", "seats": 12, "vip": False}
)


@pytest.mark.parametrize(
    "original",
    [event(SPLIT, DEFAULTED), event(), event(DEFAULTED), WITH_CONTEXT],
    ids=["two", "none", "nulls", "fallback-and-context"],
)
def test_decode_inverts_encode(original: AssignmentEvent) -> None:
    fields = {key.encode(): value for key, value in original.encode().items()}
    assert AssignmentEvent.decode(fields) == original


def test_encode_gives_bytes_fields_with_type_and_version() -> None:
    fields = event(SPLIT).encode()
    assert fields["type"] == b"assignment"
    assert fields["v"] == b"1"
    assert fields["ts_ms"] == b"1750000000123"
    assert all(isinstance(value, bytes) for value in fields.values())


def test_assignments_are_one_compact_positional_json_field() -> None:
    encoded = event(SPLIT).encode()["assignments"]
    assert b" " not in encoded
    assert orjson.loads(encoded) == [
        [
            "stt-provider", "3", "deepgram", "deepgram-nova-3", "SPLIT", None,
            "session", "s-1", "stt-2025-06", [["deepgram", 50], ["whisper", 50]], None, None,
        ]
    ]  # fmt: skip


def test_a_fallback_is_the_last_two_values_of_its_row() -> None:
    row = orjson.loads(event(FELL_BACK).encode()["assignments"])[0]
    assert row[-2:] == ["unavailable_in_region", "gemini-live"]


def test_the_context_is_one_compact_json_field_after_the_assignments() -> None:
    fields = WITH_CONTEXT.encode()
    assert list(fields)[-2:] == ["assignments", "context"]
    assert fields["context"] == b'[{"beta":true},{"plan":"pro","seats":12,"vip":false}]'
    assert event().encode()["context"] == b"[{},{}]"


def test_an_entry_written_before_fallbacks_and_context_still_decodes() -> None:
    """Old entries: 10-value assignment rows and no `context` field."""
    old_row = [
        "stt-provider", "3", "deepgram", "deepgram-nova-3", "SPLIT", None,
        "session", "s-1", "stt-2025-06", [["deepgram", 50], ["whisper", 50]],
    ]  # fmt: skip
    fields = fields_of(event(SPLIT), assignments=orjson.dumps([old_row, DEFAULTED.to_row()[:10]]))
    del fields[b"context"]
    decoded = AssignmentEvent.decode(fields)
    assert decoded == event(SPLIT, DEFAULTED)
    assert (decoded.assignments[0].fallback, decoded.assignments[0].used) == (None, None)
    assert (decoded.features, decoded.attributes) == ({}, {})


def fields_of(original: AssignmentEvent, **changes: bytes) -> dict[bytes, bytes]:
    fields = {key.encode(): value for key, value in original.encode().items()}
    fields.update({key.encode(): value for key, value in changes.items()})
    return fields


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"type": b"outcome"}, "type b.outcome.*is not an assignment event"),
        ({"v": b"2"}, "schema version b.2."),
        ({"assignments": b"[1"}, "malformed"),
        ({"assignments": b"[[1, 2]]"}, r"12 values \(or 10\), got 2"),
        ({"assignments": b"[[" + b"1," * 10 + b"1]]"}, r"12 values \(or 10\), got 11"),
        ({"ts_ms": b"soon"}, "malformed"),
        ({"context": b"[{}]"}, "malformed"),
        ({"context": b'{"a":1,"b":2}'}, "context is not"),
    ],
)
def test_decode_rejects_what_it_cannot_read(changes: dict[str, bytes], message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        AssignmentEvent.decode(fields_of(event(SPLIT), **changes))


def test_decode_rejects_a_missing_field() -> None:
    fields = fields_of(event(SPLIT))
    del fields[b"tenant_id"]
    with pytest.raises(EventDecodeError, match="tenant_id"):
        AssignmentEvent.decode(fields)


text = st.text(max_size=20)
optional = st.none() | text
assignments = st.builds(
    Assignment,
    text,
    text,
    optional,
    optional,
    text,
    optional,
    optional,
    optional,
    optional,
    st.none() | st.lists(st.tuples(text, st.integers(0, 10_000)), max_size=4).map(tuple),
    optional,
    optional,
)
attribute_values = (
    text
    | st.integers(-(2**53), 2**53)
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
)


@given(
    st.builds(
        AssignmentEvent,
        text,
        text,
        text,
        text,
        st.integers(0, 2**53),
        st.lists(assignments, max_size=5).map(tuple),
        st.dictionaries(text, st.booleans(), max_size=3),
        st.dictionaries(text, attribute_values, max_size=3),
    )
)
def test_any_event_survives_the_round_trip(original: AssignmentEvent) -> None:
    assert AssignmentEvent.decode(fields_of(original)) == original


@pytest.mark.parametrize(
    ("kind", "turn"),
    [(OutcomeKind.TURN, 3), (OutcomeKind.SESSION, None), (OutcomeKind.END, None)],
)
def test_an_outcome_event_round_trips_through_its_stream_fields(
    kind: OutcomeKind, turn: int | None
) -> None:
    event = OutcomeEvent(
        "ev-1",
        "call-1",
        "acme",
        1_700_000_000_123,
        kind,
        turn,
        (("stt_ttfb_ms", 182.0), ("task_success", 1.0)),
    )
    assert OutcomeEvent.decode(event.encode()) == event


def test_an_assignment_entry_is_not_an_outcome() -> None:
    fields = {b"type": b"assignment", b"v": b"1"}
    with pytest.raises(EventDecodeError, match="not an outcome event"):
        OutcomeEvent.decode(fields)
