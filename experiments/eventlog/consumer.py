"""`StreamConsumer`: continuous reading of the event log through a Redis consumer group.

The analysis reads history with `StreamReader`; a process that must see every
event as it comes (a live dashboard, an export) uses a consumer group instead:

    consumer = StreamConsumer.outcomes(client, "exporter", "worker-1", keys=keys)
    consumer.create_group()                      # XGROUP CREATE ... MKSTREAM, each shard
    while True:
        batch = consumer.claim_stale() or consumer.read(count=500, block_ms=5000)
        export(d.event for d in batch)
        consumer.ack(batch)                      # XACK

Delivery is at least once: an entry stays pending for the consumer it went to
until acked. When that consumer dies, any other one takes its entries idle for
`min_idle_ms` or more with `claim_stale` (XAUTOCLAIM); a consumer restarted
under the same name gets its own with `read_own_pending`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from redis import RedisCluster
from redis.exceptions import ResponseError

from ..context import check_identifier
from ..events import AssignmentEvent, EventDecodeError, OutcomeEvent
from .keys import KeyLayout
from .reader import SyncRedis
from .stream_ids import parse_stream_id

E = TypeVar("E", AssignmentEvent, OutcomeEvent)
_Entries = list[tuple[bytes, dict[bytes, bytes] | None]]
DEFAULT_MIN_IDLE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Delivery(Generic[E]):
    """One entry handed to a consumer; ack it once processed."""

    stream: str
    stream_id: str
    event: E


class StreamConsumer(Generic[E]):
    """One consumer of a consumer group over every shard's stream of one kind
    of event. Build it with `StreamConsumer.outcomes(...)` or `.assignments(...)`.

    `client` is a `redis.Redis` or `redis.RedisCluster` with bytes replies and a
    socket timeout longer than the `block_ms` it is used with. An entry that
    does not decode raises `EventDecodeError` naming its stream and id.
    """

    def __init__(
        self,
        client: SyncRedis,
        group: str,
        consumer: str,
        streams: Sequence[str],
        decode: Callable[[Mapping[bytes, bytes]], E],
        *,
        min_idle_ms: int = DEFAULT_MIN_IDLE_MS,
    ) -> None:
        check_identifier("group", group)
        check_identifier("consumer", consumer)
        if isinstance(min_idle_ms, bool) or not isinstance(min_idle_ms, int) or min_idle_ms < 0:
            raise ValueError(f"min_idle_ms must be a non-negative integer, got {min_idle_ms!r}")
        if not streams:
            raise ValueError("a consumer needs at least one stream")
        self.group = group
        self.consumer = consumer
        self.streams = tuple(streams)
        self.min_idle_ms = min_idle_ms
        self._client = client
        self._decode: Callable[[Mapping[bytes, bytes]], E] = decode
        self._turn = 0

    @staticmethod
    def outcomes(
        client: SyncRedis,
        group: str,
        consumer: str,
        *,
        keys: KeyLayout,
        min_idle_ms: int = DEFAULT_MIN_IDLE_MS,
    ) -> StreamConsumer[OutcomeEvent]:
        """A consumer of the outcome streams."""
        streams = keys.outcome_streams()
        return StreamConsumer(
            client, group, consumer, streams, OutcomeEvent.decode, min_idle_ms=min_idle_ms
        )

    @staticmethod
    def assignments(
        client: SyncRedis,
        group: str,
        consumer: str,
        *,
        keys: KeyLayout,
        min_idle_ms: int = DEFAULT_MIN_IDLE_MS,
    ) -> StreamConsumer[AssignmentEvent]:
        """A consumer of the assignment streams."""
        streams = keys.assignment_streams()
        return StreamConsumer(
            client, group, consumer, streams, AssignmentEvent.decode, min_idle_ms=min_idle_ms
        )

    def create_group(self, start: str = "0") -> None:
        """Create the group on every shard (XGROUP CREATE ... MKSTREAM); `start`
        `0` delivers the whole history, `$` only what comes next. Idempotent."""
        for stream in self.streams:
            try:
                self._client.xgroup_create(stream, self.group, id=start, mkstream=True)
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise

    def read(self, count: int = 100, block_ms: int | None = None) -> list[Delivery[E]]:
        """New entries for this consumer (XREADGROUP `>`), at most `count` per
        shard, in stream-id order; waits up to `block_ms` when there are none
        (None: no wait). On a Redis Cluster the shards are asked one by one
        (they live in different slots) and the wait rotates over them."""
        if not isinstance(self._client, RedisCluster):
            return self._group_read(dict.fromkeys(self.streams, ">"), count, block_ms)
        found = [d for s in self.streams for d in self._group_read({s: ">"}, count, None)]
        if found or block_ms is None:
            return sorted(found, key=_order)
        self._turn = (self._turn + 1) % len(self.streams)
        return self._group_read({self.streams[self._turn]: ">"}, count, block_ms)

    def read_own_pending(self, count: int = 100) -> list[Delivery[E]]:
        """Entries delivered to this consumer name and not acked yet (after a
        restart under the same name), at most `count` per shard."""
        found = [d for s in self.streams for d in self._group_read({s: "0"}, count, None)]
        return sorted(found, key=_order)

    def claim_stale(self, count: int = 100) -> list[Delivery[E]]:
        """Take over the entries that any consumer of the group has left
        unacked for `min_idle_ms` or more (XAUTOCLAIM), at most `count` per
        shard. They are this consumer's now: process, then ack them."""
        claimed: list[Delivery[E]] = []
        for stream in self.streams:
            cursor, taken = "0-0", 0
            while taken < count:
                next_cursor, entries, *_ = self._client.xautoclaim(
                    stream, self.group, self.consumer, self.min_idle_ms, cursor, count - taken
                )
                claimed += self._deliveries(stream, entries)
                taken += len(entries)
                cursor = next_cursor.decode()
                if cursor == "0-0":
                    break
        return sorted(claimed, key=_order)

    def ack(self, deliveries: Iterable[Delivery[E]]) -> int:
        """Acknowledge processed entries (one XACK per shard); how many were pending."""
        by_stream: dict[str, list[str]] = {}
        for delivery in deliveries:
            by_stream.setdefault(delivery.stream, []).append(delivery.stream_id)
        return sum(int(self._client.xack(s, self.group, *ids)) for s, ids in by_stream.items())

    def pending(self) -> int:
        """Entries delivered to a consumer of the group and not acked yet, all shards."""
        return sum(int(self._client.xpending(s, self.group)["pending"]) for s in self.streams)

    def _group_read(
        self, streams: dict[Any, Any], count: int, block_ms: int | None
    ) -> list[Delivery[E]]:
        reply = cast(
            "list[tuple[bytes, _Entries]] | None",
            self._client.xreadgroup(self.group, self.consumer, streams, count, block_ms),
        )
        found = [d for name, entries in reply or () for d in self._deliveries(name, entries)]
        return sorted(found, key=_order) if len(streams) > 1 else found

    def _deliveries(self, stream: str | bytes, entries: _Entries) -> list[Delivery[E]]:
        """Decoded deliveries; an entry trimmed away while pending (no fields)
        cannot be processed any more and is acked."""
        name = stream.decode() if isinstance(stream, bytes) else stream
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:
            self._client.xack(name, self.group, *gone)
        return [
            Delivery(name, entry_id.decode(), self._event(name, entry_id, fields))
            for entry_id, fields in entries
            if fields
        ]

    def _event(self, stream: str, entry_id: bytes, fields: Mapping[bytes, bytes]) -> E:
        try:
            return self._decode(fields)
        except EventDecodeError as exc:
            exc.context.update(stream=stream, stream_id=entry_id.decode())
            raise


def _order(delivery: Delivery[E]) -> tuple[int, int]:
    return parse_stream_id(delivery.stream_id)
