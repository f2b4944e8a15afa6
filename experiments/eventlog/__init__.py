"""The session store and the event log: protocols, the Redis implementation with
group commit, the stream reader, and an in-memory fake for tests.

Redis stays behind this package: callers use `SessionLog` / `EventReader` and
build the Redis ones with `RedisSessionLog.from_url` / `StreamReader.from_url`.
"""

from .keys import DEFAULT_PREFIX, KeyLayout
from .memory import InMemorySessionLog
from .protocols import CreateResult, EventReader, SessionLog, StreamPosition
from .reader import StreamReader, advance_position
from .redis_log import RedisSessionLog

__all__ = [
    "DEFAULT_PREFIX",
    "CreateResult",
    "EventReader",
    "InMemorySessionLog",
    "KeyLayout",
    "RedisSessionLog",
    "SessionLog",
    "StreamPosition",
    "StreamReader",
    "advance_position",
]
