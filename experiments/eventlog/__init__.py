"""The session store and the event log: protocols, the Redis implementations
with group commit (sessions and assignments, outcomes), the stream reader, the
consumer-group reader, and an in-memory fake for tests.

Redis stays behind this package: callers use `SessionLog` / `OutcomeLog` /
`EventReader` and build the Redis ones with `RedisSessionLog.from_url`,
`RedisOutcomeLog.from_url`, `StreamReader.from_url` and `StreamConsumer.outcomes`.
"""

from .consumer import Delivery, StreamConsumer
from .keys import DEFAULT_PREFIX, KeyLayout
from .memory import InMemorySessionLog
from .outcome_log import RedisOutcomeLog
from .pages import AssignmentPage, OutcomePage
from .protocols import (
    AppendResult,
    AppendStatus,
    CreateResult,
    EventReader,
    OutcomeLog,
    SessionLog,
    StreamPosition,
)
from .reader import StreamReader, advance_position
from .session_log import RedisSessionLog
from .stream_ids import parse_stream_id

__all__ = [
    "DEFAULT_PREFIX",
    "AppendResult",
    "AppendStatus",
    "AssignmentPage",
    "CreateResult",
    "Delivery",
    "EventReader",
    "InMemorySessionLog",
    "KeyLayout",
    "OutcomeLog",
    "OutcomePage",
    "RedisOutcomeLog",
    "RedisSessionLog",
    "SessionLog",
    "StreamConsumer",
    "StreamPosition",
    "StreamReader",
    "advance_position",
    "parse_stream_id",
]
