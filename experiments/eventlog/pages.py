"""Pages of stream entries as columns: what a bulk consumer (the analysis loader)
reads instead of one event object per entry.

`StreamReader.read_assignment_pages` / `read_outcome_pages` yield an
`AssignmentPage` / `OutcomePage` per batch: one list per field, entry by entry
in stream-id order, decoded from the entries' stream encoding (`experiments.events`)
column by column. The values are those of the events `read_assignments` /
`read_outcomes` give for the same entries (`page.events()` builds them), and
malformed entries raise the same `EventDecodeError`. Building no event object
per entry makes reading cheaper: 10.2 against 11.4 s for 1,000,000 outcome
events, the raw XRANGE read taking 9.2 s (`bench/bench_reader.py`), and about
a quarter less CPU for assignment events, whose assignment rows are not
turned into `Assignment`s.

Entries in the current field layout are read by position; a page holding any
other entry (an older event, another type, a malformed one) is decoded entry
by entry through the events' own decoders instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from operator import itemgetter
from typing import Any, TypeVar

import orjson

from ..events import (
    ASSIGNMENT_FIELDS,
    ASSIGNMENT_TYPE,
    OUTCOME_FIELDS,
    OUTCOME_TYPE,
    SCHEMA_VERSION,
    Assignment,
    AssignmentEvent,
    EventDecodeError,
    OutcomeEvent,
    OutcomeKind,
    outcome_kind,
)

Entry = tuple[bytes, Sequence[bytes] | Mapping[bytes, bytes]]
"""A stream entry as XRANGE replies it: its id and its flat `[field, value, ...]`
list (or the dict of them that redis-py's parser makes, as a cluster client does)."""
E = TypeVar("E", AssignmentEvent, OutcomeEvent)

_VERSION = str(SCHEMA_VERSION).encode()
_METRIC_NUMBERS = frozenset({float, int})
_ROW_SIZES = frozenset({10, 12})
_LIST = frozenset({list})


@dataclass(frozen=True, slots=True)
class OutcomePage:
    """Outcome events as columns. The metrics of event `i` are the
    `metric_counts[i]` pairs of `metric_names`/`metric_values` after those of
    the events before it."""

    stream_ids: list[str]
    event_ids: list[str]
    session_ids: list[str]
    tenant_ids: list[str]
    ts_ms: list[int]
    kinds: list[OutcomeKind]
    turns: list[int | None]
    metric_counts: list[int]
    metric_names: list[str]
    metric_values: list[float]

    def __len__(self) -> int:
        return len(self.stream_ids)

    @classmethod
    def decode(cls, entries: Sequence[Entry]) -> OutcomePage:
        """The page of raw stream entries; `EventDecodeError` (with the entry's
        `stream_id` in its context) when one is not an outcome event."""
        entries = _flat_entries(entries)
        flats = _flat_values(entries, _OUTCOME_LAYOUT, OUTCOME_TYPE)
        if flats is None:
            return cls.from_events(_decoded(entries, OutcomeEvent.decode_entry))
        column = _Columns(flats)
        try:
            counts, names, values = _metric_columns(column.json("metrics"))
            return cls(
                _texts(map(itemgetter(0), entries)),
                column.texts("event_id"),
                column.texts("session_id"),
                column.texts("tenant_id"),
                list(map(int, column.raw("ts_ms"))),
                list(map(outcome_kind, column.raw("kind"))),
                [int(turn) if turn else None for turn in column.raw("turn")],
                counts,
                names,
                values,
            )
        except (ValueError, TypeError):  # decode entry by entry: the error names the entry
            return cls.from_events(_decoded(entries, OutcomeEvent.decode_entry))

    @classmethod
    def from_events(cls, entries: Iterable[tuple[str, OutcomeEvent]]) -> OutcomePage:
        """The page of decoded events (e.g. from a reader without pages)."""
        pairs = list(entries)
        events = [event for _, event in pairs]
        metrics = [event.metrics for event in events]
        flat = list(chain.from_iterable(metrics))
        return cls(
            [stream_id for stream_id, _ in pairs],
            [e.event_id for e in events],
            [e.session_id for e in events],
            [e.tenant_id for e in events],
            [e.ts_ms for e in events],
            [e.kind for e in events],
            [e.turn for e in events],
            list(map(len, metrics)),
            [name for name, _ in flat],
            [value for _, value in flat],
        )

    def events(self) -> list[tuple[str, OutcomeEvent]]:
        """`(stream_id, event)` per entry, as `StreamReader.read_outcomes` gives them."""
        pairs = zip(self.metric_names, map(float, self.metric_values), strict=True)
        metrics = [tuple(islice(pairs, count)) for count in self.metric_counts]
        return list(
            zip(
                self.stream_ids,
                map(
                    OutcomeEvent,
                    self.event_ids,
                    self.session_ids,
                    self.tenant_ids,
                    self.ts_ms,
                    self.kinds,
                    self.turns,
                    metrics,
                ),
                strict=True,
            )
        )


@dataclass(frozen=True, slots=True)
class AssignmentPage:
    """Assignment events as columns. `rows[i]` holds event `i`'s assignments in
    their positional stream form (`Assignment.to_row`, possibly the older
    10-value form): `assignments_of` gives one flag's as `Assignment`s."""

    stream_ids: list[str]
    event_ids: list[str]
    session_ids: list[str]
    tenant_ids: list[str]
    regions: list[str]
    ts_ms: list[int]
    rows: list[list[list[Any]]]
    features: list[dict[str, bool]]
    attributes: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.stream_ids)

    @classmethod
    def decode(cls, entries: Sequence[Entry]) -> AssignmentPage:
        """The page of raw stream entries; `EventDecodeError` (with the entry's
        `stream_id` in its context) when one is not an assignment event."""
        entries = _flat_entries(entries)
        flats = _flat_values(entries, _ASSIGNMENT_LAYOUT, ASSIGNMENT_TYPE)
        if flats is None:
            return cls.from_events(_decoded(entries, AssignmentEvent.decode_entry))
        column = _Columns(flats)
        try:
            rows = column.json("assignments")
            contexts = column.json("context")
            if rows and set(map(type, rows)) != {list}:
                raise TypeError("assignments is not a list of rows")
            every_row = list(chain.from_iterable(rows))
            if every_row and (
                set(map(type, every_row)) != {list} or not set(map(len, every_row)) <= _ROW_SIZES
            ):
                raise TypeError("an assignment is not a row of 12 (or 10) values")
            if contexts and set(map(type, contexts)) != {list}:
                raise TypeError("context is not [features, attributes]")
            features, attributes = (
                ([], []) if not contexts else map(list, zip(*contexts, strict=True))
            )
            if contexts and set(map(type, chain(features, attributes))) != {dict}:
                raise TypeError("context is not [features, attributes]")
            return cls(
                _texts(map(itemgetter(0), entries)),
                column.texts("event_id"),
                column.texts("session_id"),
                column.texts("tenant_id"),
                column.texts("region"),
                list(map(int, column.raw("ts_ms"))),
                rows,
                features,
                attributes,
            )
        except (ValueError, TypeError):  # decode entry by entry: the error names the entry
            return cls.from_events(_decoded(entries, AssignmentEvent.decode_entry))

    @classmethod
    def from_events(cls, entries: Iterable[tuple[str, AssignmentEvent]]) -> AssignmentPage:
        """The page of decoded events (e.g. from a reader without pages)."""
        pairs = list(entries)
        events = [event for _, event in pairs]
        return cls(
            [stream_id for stream_id, _ in pairs],
            [e.event_id for e in events],
            [e.session_id for e in events],
            [e.tenant_id for e in events],
            [e.region for e in events],
            [e.ts_ms for e in events],
            [[a.to_row() for a in e.assignments] for e in events],
            [dict(e.features) for e in events],
            [dict(e.attributes) for e in events],
        )

    def assignments_of(self, flag_key: str) -> list[Assignment | None]:
        """Per entry, its assignment of `flag_key` (None where the flag was not evaluated)."""
        found: list[Assignment | None] = []
        for rows in self.rows:
            for row in rows:
                if row[0] == flag_key:
                    found.append(_assignment(row))
                    break
            else:
                found.append(None)
        return found

    def events(self) -> list[tuple[str, AssignmentEvent]]:
        """`(stream_id, event)` per entry, as `StreamReader.read_assignments` gives them."""
        return list(
            zip(
                self.stream_ids,
                map(
                    AssignmentEvent,
                    self.event_ids,
                    self.session_ids,
                    self.tenant_ids,
                    self.regions,
                    self.ts_ms,
                    [tuple(map(_assignment, rows)) for rows in self.rows],
                    self.features,
                    self.attributes,
                ),
                strict=True,
            )
        )


def _assignment(row: Sequence[Any]) -> Assignment:
    try:
        return Assignment.from_row(row)
    except (ValueError, TypeError) as exc:
        raise EventDecodeError(f"malformed assignment event: {exc!r}") from exc


class _Layout:
    """Where each field's value sits in an entry's flat list, and the field names."""

    def __init__(self, fields: Sequence[bytes]) -> None:
        self.size = 2 * len(fields)
        self.names = tuple(fields)
        self.name_getter = itemgetter(*range(0, self.size, 2))
        self.value_index = {name.decode(): 2 * i + 1 for i, name in enumerate(fields)}


_OUTCOME_LAYOUT = _Layout(OUTCOME_FIELDS)
_ASSIGNMENT_LAYOUT = _Layout([name.encode() for name in ASSIGNMENT_FIELDS])


def _flat_entries(entries: Sequence[Entry]) -> list[tuple[bytes, list[bytes]]]:
    """The entries with their fields as flat lists (a dict flattened in its order)."""
    if set(map(type, map(itemgetter(1), entries))) <= _LIST:
        return entries  # type: ignore[return-value]
    return [(entry_id, _flat(fields)) for entry_id, fields in entries]


def _flat(fields: Sequence[bytes] | Mapping[bytes, bytes]) -> list[bytes]:
    if isinstance(fields, list):
        return fields
    if isinstance(fields, Mapping):
        return list(chain.from_iterable(fields.items()))
    return list(fields)


def _flat_values(
    entries: Sequence[tuple[bytes, list[bytes]]], layout: _Layout, type_: bytes
) -> tuple[Sequence[Sequence[bytes]], _Layout] | None:
    """The entries' flat lists when every entry has `layout`'s fields in order and
    is of type `type_` and this schema version; None when any entry is not."""
    flats = list(map(itemgetter(1), entries))
    n = len(flats)
    if not n:
        return flats, layout
    if set(map(len, flats)) != {layout.size}:
        return None
    if list(map(layout.name_getter, flats)).count(layout.names) != n:
        return None
    types = list(map(itemgetter(layout.value_index["type"]), flats))
    versions = list(map(itemgetter(layout.value_index["v"]), flats))
    if types.count(type_) != n or versions.count(_VERSION) != n:
        return None
    return flats, layout


class _Columns:
    """One field's values over a page's entries (all in the same layout)."""

    def __init__(self, flats_and_layout: tuple[Sequence[Sequence[bytes]], _Layout]) -> None:
        self.flats, self.layout = flats_and_layout

    def raw(self, name: str) -> list[bytes]:
        return list(map(itemgetter(self.layout.value_index[name]), self.flats))

    def texts(self, name: str) -> list[str]:
        return _texts(self.raw(name))

    def json(self, name: str) -> list[Any]:
        return list(map(orjson.loads, self.raw(name)))


def _texts(values: Iterable[bytes]) -> list[str]:
    return list(map(bytes.decode, values))


def _metric_columns(metrics: list[Any]) -> tuple[list[int], list[str], list[float]]:
    """Counts per event and the flat names and values of `[[name, value], ...]` lists."""
    if metrics and set(map(type, metrics)) != {list}:
        raise TypeError("metrics is not a list of [name, value] pairs")
    counts = list(map(len, metrics))
    pairs = list(chain.from_iterable(metrics))
    if not pairs:
        return counts, [], []
    # ValueError unless every pair has two values (and no string or dict of two
    # characters or keys passes: its second one is a string, not a number)
    names, values = map(list, zip(*pairs, strict=True))
    if set(map(type, names)) != {str}:
        raise TypeError("a metric name is not a string")
    types = set(map(type, values))
    if types != {float}:
        if not types <= _METRIC_NUMBERS:
            raise TypeError("a metric value is not a number")
        values = list(map(float, values))
    return counts, names, values


def _decoded(
    entries: Sequence[tuple[bytes, list[bytes]]], decode: Callable[[Sequence[bytes]], E]
) -> list[tuple[str, E]]:
    """Every entry decoded on its own; `EventDecodeError` names the first bad one."""
    decoded = []
    for entry_id, fields in entries:
        try:
            decoded.append((entry_id.decode(), decode(fields)))
        except EventDecodeError as exc:
            exc.context["stream_id"] = entry_id.decode()
            raise
    return decoded
