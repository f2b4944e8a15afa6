"""Reading the event log back from Redis, synchronously.

`StreamReader` reads the assignment or outcome streams: every shard in XRANGE
pages, merged by stream id, so batches come out in time order. Resuming with
one stream id for all shards can miss an entry that a slower shard wrote later
in the same millisecond with a lower sequence number; `advance_position` keeps
one position per shard, which never misses anything.

`read_assignment_pages` / `read_outcome_pages` give the same entries as
columns (`pages`), for bulk readers such as the analysis loader.

On a plain Redis client the reader takes XRANGE replies as Redis sends them
(flat `[field, value, ...]` lists, no dict per entry) and decodes them by
position (`AssignmentEvent.decode_entry`).

`consumer.StreamConsumer` reads continuously through a consumer group.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from types import TracebackType
from typing import Any, Generic, NamedTuple, TypeVar, cast

from redis import Redis, RedisCluster

from ..events import AssignmentEvent, EventDecodeError, OutcomeEvent
from ..performance import gc_paused
from .connect import sync_client
from .keys import KeyLayout
from .pages import AssignmentPage, OutcomePage
from .protocols import StreamPosition
from .stream_ids import parse_stream_id

SyncRedis = Redis | RedisCluster
Fields = list[bytes] | dict[bytes, bytes]
"""A stream entry's fields: the flat `[field, value, ...]` reply, or (from a
cluster client, whose replies go through redis-py's parser) a dict."""
_Page = list[tuple[bytes, Fields]]
_Entry = tuple[tuple[int, int], bytes, Fields, int]  # (order, id, fields, shard)
E = TypeVar("E", AssignmentEvent, OutcomeEvent)
P = TypeVar("P")


class StreamReader:
    """An `EventReader` on Redis (`redis.Redis` or `redis.RedisCluster`, bytes
    responses). `client` is closed by `close` only when the reader made it."""

    def __init__(
        self, client: SyncRedis, *, keys: KeyLayout | None = None, owns_client: bool = False
    ) -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("StreamReader needs a client with decode_responses=False")
        self.keys = keys or KeyLayout()
        self._client = client
        self._owns_client = owns_client
        self._xrange = _flat_xrange(client)

    @classmethod
    def from_url(
        cls, url: str, *, keys: KeyLayout | None = None, socket_timeout_s: float = 30.0
    ) -> StreamReader:
        """A reader with its own client for `url`; `close` (or `with`) closes it."""
        client = sync_client(
            url, socket_timeout_s=socket_timeout_s, connect_timeout_s=min(socket_timeout_s, 5.0)
        )
        return cls(client, keys=keys, owns_client=True)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> StreamReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def count_assignments(self) -> int:
        """The number of entries in the assignment streams (XLEN over the shards)."""
        return self._count(self.keys.assignment_streams())

    def count_outcomes(self) -> int:
        """The number of entries in the outcome streams (XLEN over the shards)."""
        return self._count(self.keys.outcome_streams())

    def _count(self, streams: Iterable[str]) -> int:
        return sum(int(self._client.xlen(stream)) for stream in streams)

    def read_assignments(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, AssignmentEvent]]]:
        """Yield lists of at most `batch` `(stream_id, event)` recorded after
        `since` (exclusive; one id for all shards or one per shard index),
        merged over the shards in stream-id order, until every shard is read."""
        return self._read(self.keys.assignment_stream, _events(_ASSIGNMENT_DECODERS), since, batch)

    def read_outcomes(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[list[tuple[str, OutcomeEvent]]]:
        """Like `read_assignments`, over the outcome streams. Each (session,
        event id) is there once: the outcome log dedupes retries and replays."""
        return self._read(self.keys.outcome_stream, _events(_OUTCOME_DECODERS), since, batch)

    def read_assignment_pages(
        self, since: StreamPosition = "0-0", batch: int = 10_000
    ) -> Iterator[AssignmentPage]:
        """The entries of `read_assignments` as columns, a page per batch (see
        `pages`): for bulk readers, cheaper than building an event per entry."""
        return self._read(self.keys.assignment_stream, AssignmentPage.decode, since, batch)

    def read_outcome_pages(
        self, since: StreamPosition = "0-0", batch: int = 10_000, *, until: str | None = None
    ) -> Iterator[OutcomePage]:
        """The entries of `read_outcomes` as columns, a page per batch; with
        `until` (a stream id), only those up to it, inclusive, on every shard."""
        return self._read(self.keys.outcome_stream, OutcomePage.decode, since, batch, until)

    def outcome_time_span(self) -> tuple[int, int] | None:
        """The milliseconds of the first and the last outcome entry over the
        shards (their stream ids' time part), or None when there is none."""
        first: list[int] = []
        last: list[int] = []
        for stream in self.keys.outcome_streams():
            head = cast("_Page", self._xrange(stream, min="-", max="+", count=1))
            tail = cast("_Page", self._client.xrevrange(stream, max="+", min="-", count=1))
            if head and tail:
                first.append(parse_stream_id(head[0][0])[0])
                last.append(parse_stream_id(tail[0][0])[0])
        return (min(first), max(last)) if first else None

    def _read(
        self,
        stream: Callable[[int], str],
        decode: Callable[[_Page], P],
        since: StreamPosition,
        batch: int,
        until: str | None = None,
    ) -> Iterator[P]:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        starts = _starts(since, self.keys.shards)
        end = "+" if until is None else "-".join(map(str, parse_stream_id(until)))
        if self.keys.shards == 1:
            return self._single(stream, decode, starts[0], batch, end)
        return self._merged(stream, decode, starts, batch, end)

    def _single(
        self,
        stream: Callable[[int], str],
        decode: Callable[[_Page], P],
        start: str,
        batch: int,
        end: str,
    ) -> Iterator[P]:
        for page in self._pages(stream(0), start, batch, end):
            yield _decode_page(decode, page, (stream(0),))

    def _merged(
        self,
        stream: Callable[[int], str],
        decode: Callable[[_Page], P],
        starts: dict[int, str],
        batch: int,
        end: str,
    ) -> Iterator[P]:
        shards = [
            self._entries(stream, shard, start, batch, end) for shard, start in starts.items()
        ]
        merged = heapq.merge(*shards, key=_order)
        names = tuple(stream(shard) for shard in starts)
        while page := [entry[1:3] for entry in islice(merged, batch)]:
            yield _decode_page(decode, page, names)

    def _entries(
        self, stream: Callable[[int], str], shard: int, start: str, page: int, end: str
    ) -> Iterator[_Entry]:
        """Every entry of one shard after `start` (up to `end`) with its sort key."""
        for entries in self._pages(stream(shard), start, page, end):
            for entry_id, fields in entries:
                yield parse_stream_id(entry_id), entry_id, fields, shard

    def _pages(self, key: str, start: str, page: int, end: str = "+") -> Iterator[_Page]:
        """One stream's entries after `start` up to `end` (inclusive), `page` at a
        time (XRANGE with an exclusive start, Redis 6.2+)."""
        cursor = start
        while True:
            with gc_paused():
                entries = cast("_Page", self._xrange(key, min=f"({cursor}", max=end, count=page))
            if not entries:
                return
            yield entries
            if len(entries) < page:
                return
            cursor = entries[-1][0].decode()


class _Decoders(NamedTuple, Generic[E]):
    """How to decode an entry's fields: from the flat reply, or from a dict."""

    flat: Callable[[Sequence[bytes]], E]
    mapping: Callable[[Mapping[bytes, bytes]], E]


_ASSIGNMENT_DECODERS = _Decoders(AssignmentEvent.decode_entry, AssignmentEvent.decode)
_OUTCOME_DECODERS = _Decoders(OutcomeEvent.decode_entry, OutcomeEvent.decode)


def _events(decoders: _Decoders[E]) -> Callable[[_Page], list[tuple[str, E]]]:
    """Decodes a page into `(stream_id, event)` pairs; `EventDecodeError` names the entry."""

    def decode_page(page: _Page) -> list[tuple[str, E]]:
        if not page:
            return []
        decode = cast(
            "Callable[[Fields], E]",
            decoders.mapping if isinstance(page[0][1], dict) else decoders.flat,
        )
        try:
            return [(entry_id.decode(), decode(fields)) for entry_id, fields in page]
        except EventDecodeError as exc:
            exc.context["stream_id"] = next(i.decode() for i, f in page if _fails(decode, f))
            raise

    return decode_page


def _decode_page(decode: Callable[[_Page], P], page: _Page, streams: tuple[str, ...]) -> P:
    """`decode(page)` with the cyclic GC paused; a decode error names the streams."""
    with gc_paused():
        try:
            return decode(page)
        except EventDecodeError as exc:
            exc.context["streams"] = list(streams)
            raise


def _fails(decode: Callable[[Fields], object], fields: Fields) -> bool:
    try:
        decode(fields)
    except EventDecodeError:
        return True
    return False


def _flat_xrange(client: SyncRedis) -> Callable[..., Any]:
    """XRANGE that returns entries as `(id, [field, value, ...])` straight from
    the reply, for a plain client: redis-py's parser turns every entry's
    fields into a dict, which costs about as much as decoding the event
    (bench/bench_reader.py).
    A second client on the same connection pool carries the changed parser,
    so `client` itself is left as it was. A cluster client keeps its parser
    (its per-node clients and redirections are its own) and gives dicts."""
    if isinstance(client, Redis):
        flat = Redis(connection_pool=client.connection_pool)
        flat.set_response_callback("XRANGE", _entries)
        return flat.xrange
    return client.xrange


def _entries(response: list[list[Any]] | None, **options: Any) -> list[list[Any]]:
    return [] if response is None else response


def advance_position(
    position: StreamPosition,
    entries: Iterable[tuple[str, AssignmentEvent | OutcomeEvent]],
    keys: KeyLayout,
) -> dict[int, str]:
    """The per-shard position after `entries` (read from `position`): pass it as
    `since` to read only what came next, with nothing missed on any shard."""
    result = _starts(position, keys.shards)
    for stream_id, event in entries:
        shard = keys.shard_of(event.session_id)
        if parse_stream_id(stream_id) > parse_stream_id(result[shard]):
            result[shard] = stream_id
    return result


def _starts(since: StreamPosition, shards: int) -> dict[int, str]:
    """One start id per shard; checks every id before any I/O."""
    if isinstance(since, str):
        starts = dict.fromkeys(range(shards), since)
    else:
        unknown = sorted(set(since) - set(range(shards)))
        if unknown:
            raise ValueError(f"positions for shards {unknown} outside 0..{shards - 1}")
        starts = {shard: since.get(shard, "0-0") for shard in range(shards)}
    for stream_id in starts.values():
        parse_stream_id(stream_id)
    return starts


def _order(entry: _Entry) -> tuple[int, int]:
    return entry[0]
