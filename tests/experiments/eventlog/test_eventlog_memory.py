"""The in-memory fake follows the SessionLog contract."""

from __future__ import annotations

import pytest

from experiments.errors import ErrorCode, ExperimentError, StorageUnavailableError
from experiments.eventlog import EventReader, InMemorySessionLog, SessionLog
from experiments.events import AssignmentEvent


def event(session_id: str, event_id: str = "e-1") -> AssignmentEvent:
    return AssignmentEvent(event_id, session_id, "acme", "eu-west", 1, ())


def test_the_fake_satisfies_both_protocols() -> None:
    log = InMemorySessionLog()
    assert isinstance(log, SessionLog)
    assert isinstance(log, EventReader)


async def test_create_then_get() -> None:
    log = InMemorySessionLog()
    result = await log.create_session("s-1", b"{}", event("s-1"))
    assert result.created
    assert result.stream_id is not None
    assert await log.get_session("s-1") == b"{}"
    assert await log.get_session("s-2") is None


async def test_a_second_create_returns_the_stored_document_and_writes_nothing() -> None:
    log = InMemorySessionLog()
    await log.create_session("s-1", b"first", event("s-1", "e-1"))
    again = await log.create_session("s-1", b"second", event("s-1", "e-2"))
    assert (again.document, again.created, again.stream_id) == (b"first", False, None)
    assert len(log.stream) == 1


async def test_a_retry_of_the_same_event_finds_its_own_write() -> None:
    log = InMemorySessionLog()
    first = await log.create_session("s-1", b"doc", event("s-1"))
    assert await log.create_session("s-1", b"doc", event("s-1")) == first


async def test_an_unavailable_fake_raises_storage_unavailable() -> None:
    log = InMemorySessionLog()
    log.unavailable = True
    assert not await log.ping()
    with pytest.raises(StorageUnavailableError):
        await log.create_session("s-1", b"{}", event("s-1"))


@pytest.mark.parametrize(
    ("session_id", "document", "event_session"),
    [("s-1", "text", "s-1"), ("s-1", b"{}", "s-2"), ("", b"{}", ""), (" s", b"{}", " s")],
)
async def test_bad_arguments_are_refused(
    session_id: str, document: bytes, event_session: str
) -> None:
    with pytest.raises(ExperimentError) as caught:
        await InMemorySessionLog().create_session(session_id, document, event(event_session))
    assert caught.value.code is ErrorCode.INVALID_INPUT


async def test_the_fake_reads_back_in_batches_after_a_position() -> None:
    log = InMemorySessionLog()
    for i in range(5):
        await log.create_session(f"s-{i}", b"{}", event(f"s-{i}"))
    batches = list(log.read_assignments(batch=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    after = batches[0][-1][0]
    assert [e.session_id for _, e in next(log.read_assignments(since=after))] == [
        "s-2",
        "s-3",
        "s-4",
    ]
