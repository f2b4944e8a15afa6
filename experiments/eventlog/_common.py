"""Helpers shared by the session log implementations and the readers."""

from __future__ import annotations

from ..context import check_identifier
from ..errors import ErrorCode, ExperimentError
from ..events import AssignmentEvent


def check_create_args(session_id: str, document: bytes, event: AssignmentEvent) -> None:
    """The argument rules of `SessionLog.create_session`, checked before any I/O."""
    check_identifier("session_id", session_id)
    if not isinstance(document, bytes):
        raise ExperimentError(
            f"session {session_id!r}: document must be bytes, got {type(document).__name__}",
            code=ErrorCode.INVALID_INPUT,
            context={"session_id": session_id, "field": "document"},
        )
    if event.session_id != session_id:
        raise ExperimentError(
            f"session {session_id!r}: the assignment event is for session {event.session_id!r}",
            code=ErrorCode.INVALID_INPUT,
            context={"session_id": session_id, "event_session_id": event.session_id},
        )


def parse_stream_id(stream_id: str | bytes) -> tuple[int, int]:
    """`"<ms>-<seq>"` as a tuple that sorts like Redis orders stream ids."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a stream id (<ms>-<seq>)") from None
