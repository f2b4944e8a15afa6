"""The events voxroute records and their stream encoding.

An `AssignmentEvent` is written once per session, when the session is created,
and carries every flag assignment made for it. On a Redis stream it is one entry
whose fields are all bytes:

| field          | value                                                          |
|----------------|----------------------------------------------------------------|
| `type`         | `assignment`                                                   |
| `v`            | schema version, `1`                                            |
| `event_id`     | unique id of the event (idempotency of retries and replays)    |
| `session_id`   | the session                                                    |
| `tenant_id`    | its tenant                                                     |
| `region`       | its region                                                     |
| `ts_ms`        | decision time, milliseconds since the Unix epoch               |
| `assignments`  | compact JSON array with one array per assignment (below)       |
| `context`      | compact JSON `[features, attributes]`: the session's objects   |

Each assignment is the array `[flag_key, flag_version, variant, value, reason,
error_code, bucket_unit, bucket_key, split_id, split_weights, fallback, used]`
in that order, with `null` for an absent value and `split_weights` as
`[[variant, weight], ...]`. `fallback` is the router's fallback reason (e.g.
`unavailable_in_region`) when the route part this flag decides fell back to the
catalog default, and `used` what was routed instead (a catalog provider id, or
`pipeline` for the mode); both are `null` when the flag's value was used.
Positional arrays keep entries small and quick to decode; `v` versions the order.

Older entries are still read: an assignment of 10 values (before `fallback`
and `used`) decodes with both None, an entry without `context` with empty
`features` and `attributes`. The additions are trailing, so `v` stays `1`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from .errors import ErrorCode, ExperimentError
from .performance import fast_init

SCHEMA_VERSION = 1
ASSIGNMENT_TYPE = b"assignment"
OUTCOME_TYPE = b"outcome"
ASSIGNMENT_FIELDS = (
    "type", "v", "event_id", "session_id", "tenant_id", "region", "ts_ms", "assignments",
    "context",
)  # fmt: skip
_VERSION = str(SCHEMA_VERSION).encode()


class EventDecodeError(ExperimentError):
    """A stream entry is not an event this version of voxroute can read."""

    code = ErrorCode.INVALID_INPUT


@fast_init
@dataclass(frozen=True, slots=True)
class Assignment:
    """One flag evaluated for one session: the variant served and why."""

    flag_key: str
    flag_version: str
    variant: str | None
    value: str | None
    reason: str
    error_code: str | None
    bucket_unit: str | None
    bucket_key: str | None
    split_id: str | None
    split_weights: tuple[tuple[str, int], ...] | None
    fallback: str | None = None
    """The router's `FallbackReason` when this flag's route part fell back, else None."""
    used: str | None = None
    """What was routed instead when `fallback` is set (catalog id, or the mode), else None."""

    def to_row(self) -> list[Any]:
        """The positional JSON form stored on the stream."""
        return [
            self.flag_key,
            self.flag_version,
            self.variant,
            self.value,
            self.reason,
            self.error_code,
            self.bucket_unit,
            self.bucket_key,
            self.split_id,
            None if self.split_weights is None else [list(pair) for pair in self.split_weights],
            self.fallback,
            self.used,
        ]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Assignment:
        """The inverse of `to_row` (also of its older 10-value form, without
        `fallback` and `used`); `ValueError` or `TypeError` when `row` is not one."""
        if len(row) == 12:
            key, version, variant, value, reason, error, unit, bucket_key, split, weights, \
                fallback, used = row  # fmt: skip
        elif len(row) == 10:
            key, version, variant, value, reason, error, unit, bucket_key, split, weights = row
            fallback = used = None
        else:
            raise ValueError(f"an assignment row has 12 values (or 10), got {len(row)}")
        if weights is not None:
            weights = tuple(map(tuple, weights))
        return Assignment(
            key, version, variant, value, reason, error, unit, bucket_key, split, weights,
            fallback, used,
        )  # fmt: skip


@fast_init
@dataclass(frozen=True, slots=True)
class AssignmentEvent:
    """All flag assignments of one session, recorded when the session is created."""

    event_id: str
    session_id: str
    tenant_id: str
    region: str
    ts_ms: int
    assignments: tuple[Assignment, ...]
    features: Mapping[str, bool] = field(default_factory=dict)
    """The session's feature switches (`RouteContext.features`)."""
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """The session's free attributes (`RouteContext.attributes`)."""

    def encode(self) -> dict[str, bytes]:
        """The stream entry fields of this event (see the module docstring)."""
        return dict(zip(ASSIGNMENT_FIELDS, self.encode_values(), strict=True))

    def encode_values(self) -> tuple[bytes, ...]:
        """The values of `encode()`, in `ASSIGNMENT_FIELDS` order."""
        return (
            ASSIGNMENT_TYPE,
            _VERSION,
            self.event_id.encode(),
            self.session_id.encode(),
            self.tenant_id.encode(),
            self.region.encode(),
            str(self.ts_ms).encode(),
            orjson.dumps([a.to_row() for a in self.assignments]),
            orjson.dumps((self.features, self.attributes)),
        )

    @classmethod
    def decode(cls, fields: Mapping[bytes, bytes]) -> AssignmentEvent:
        """Rebuild an event from stream entry fields; raise `EventDecodeError`
        when the entry is of another type, another schema version or malformed."""
        if fields.get(b"type") != ASSIGNMENT_TYPE or fields.get(b"v") != _VERSION:
            raise EventDecodeError(
                f"stream entry of type {fields.get(b'type')!r}, schema version "
                f"{fields.get(b'v')!r} is not an assignment event of version {SCHEMA_VERSION}"
            )
        try:
            return _assignment_event(
                (
                    ASSIGNMENT_TYPE,
                    _VERSION,
                    fields[b"event_id"],
                    fields[b"session_id"],
                    fields[b"tenant_id"],
                    fields[b"region"],
                    fields[b"ts_ms"],
                    fields[b"assignments"],
                    fields.get(b"context"),
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise EventDecodeError(f"malformed assignment event: {exc!r}") from exc

    @classmethod
    def decode_entry(cls, entry: Sequence[bytes]) -> AssignmentEvent:
        """Like `decode`, from the flat `[field, value, field, value, ...]` list
        of a stream entry as Redis replies it (XRANGE without building a dict).
        An entry in the current field order is read by position; any other
        (an older event, another type, a malformed entry) goes through `decode`."""
        if entry[0::2] != _ASSIGNMENT_KEYS:
            return cls.decode(_as_fields(entry))
        values = entry[1::2]
        if values[0] != ASSIGNMENT_TYPE or values[1] != _VERSION:
            return cls.decode(_as_fields(entry))
        try:
            return _assignment_event(values)
        except (ValueError, TypeError) as exc:
            raise EventDecodeError(f"malformed assignment event: {exc!r}") from exc


def _assignment_event(values: Sequence[Any]) -> AssignmentEvent:
    """The event of an entry's values in `ASSIGNMENT_FIELDS` order (`context` may be None)."""
    _, _, event_id, session_id, tenant_id, region, ts_ms, assignments, context = values
    rows = orjson.loads(assignments)
    features, attributes = ({}, {}) if context is None else orjson.loads(context)
    if not isinstance(features, dict) or not isinstance(attributes, dict):
        raise TypeError(f"context is not [features, attributes]: {context!r}")
    return AssignmentEvent(
        event_id.decode(),
        session_id.decode(),
        tenant_id.decode(),
        region.decode(),
        int(ts_ms),
        tuple([_from_row(row) for row in rows]),
        features,
        attributes,
    )


def _as_fields(entry: Sequence[bytes]) -> dict[bytes, bytes]:
    return dict(zip(entry[0::2], entry[1::2], strict=True))


_from_row = Assignment.from_row


OUTCOME_FIELDS = (
    b"type",
    b"v",
    b"event_id",
    b"session_id",
    b"tenant_id",
    b"ts_ms",
    b"kind",
    b"turn",
    b"metrics",
)


class OutcomeKind(StrEnum):
    """Where a measurement belongs: one turn, the whole session, or the session's end."""

    TURN = "turn"
    SESSION = "session"
    END = "end"


@fast_init
@dataclass(frozen=True, slots=True)
class OutcomeEvent:
    """Measurements reported for one session (one turn of it, or all of it).

    On a stream the fields are `type` (`outcome`), `v`, `event_id`, `session_id`,
    `tenant_id`, `ts_ms`, `kind` (`turn`, `session`, `end`), `turn` (empty when
    not a turn) and `metrics`: a compact JSON array of `[name, value]` pairs,
    booleans as 0/1. The event id makes retries and replays idempotent.
    """

    event_id: str
    session_id: str
    tenant_id: str
    ts_ms: int
    kind: OutcomeKind
    turn: int | None
    metrics: tuple[tuple[str, float], ...]

    def encode(self) -> dict[bytes, bytes]:
        return dict(zip(OUTCOME_FIELDS, self.encode_values(), strict=True))

    def encode_values(self) -> tuple[bytes, ...]:
        """The values of `encode()`, in `OUTCOME_FIELDS` order."""
        return (
            OUTCOME_TYPE,
            _VERSION,
            self.event_id.encode(),
            self.session_id.encode(),
            self.tenant_id.encode(),
            str(self.ts_ms).encode(),
            self.kind.value.encode(),
            b"" if self.turn is None else str(self.turn).encode(),
            orjson.dumps(self.metrics),
        )

    @classmethod
    def decode(cls, fields: Mapping[bytes, bytes]) -> OutcomeEvent:
        """Rebuild an event from stream entry fields; raise `EventDecodeError`
        when the entry is of another type, another schema version or malformed."""
        if fields.get(b"type") != OUTCOME_TYPE or fields.get(b"v") != _VERSION:
            raise EventDecodeError(
                f"stream entry of type {fields.get(b'type')!r}, schema version "
                f"{fields.get(b'v')!r} is not an outcome event of version {SCHEMA_VERSION}"
            )
        try:
            return _outcome_event(
                (
                    OUTCOME_TYPE,
                    _VERSION,
                    *(fields[name] for name in OUTCOME_FIELDS[2:]),
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise EventDecodeError(f"malformed outcome event: {exc!r}") from exc

    @classmethod
    def decode_entry(cls, entry: Sequence[bytes]) -> OutcomeEvent:
        """Like `decode`, from the flat `[field, value, ...]` list of a stream
        entry as Redis replies it; see `AssignmentEvent.decode_entry`."""
        if entry[0::2] != _OUTCOME_KEYS:
            return cls.decode(_as_fields(entry))
        values = entry[1::2]
        if values[0] != OUTCOME_TYPE or values[1] != _VERSION:
            return cls.decode(_as_fields(entry))
        try:
            return _outcome_event(values)
        except (ValueError, TypeError) as exc:
            raise EventDecodeError(f"malformed outcome event: {exc!r}") from exc


def outcome_kind(text: bytes) -> OutcomeKind:
    """The `OutcomeKind` of a stream entry's `kind` field; `ValueError` if none."""
    kind = _KINDS.get(text)
    if kind is None:
        raise ValueError(f"{text!r} is not an outcome kind ({', '.join(OutcomeKind)})")
    return kind


def _outcome_event(values: Sequence[bytes]) -> OutcomeEvent:
    """The event of an entry's values in `OUTCOME_FIELDS` order."""
    _, _, event_id, session_id, tenant_id, ts_ms, kind, turn, metrics = values
    return OutcomeEvent(
        event_id.decode(),
        session_id.decode(),
        tenant_id.decode(),
        int(ts_ms),
        outcome_kind(kind),
        int(turn) if turn else None,
        tuple([(name, float(value)) for name, value in orjson.loads(metrics)]),
    )


_KINDS = {kind.value.encode(): kind for kind in OutcomeKind}
_ASSIGNMENT_KEYS = [name.encode() for name in ASSIGNMENT_FIELDS]
_OUTCOME_KEYS = list(OUTCOME_FIELDS)
