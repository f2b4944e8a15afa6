"""Outcome reporting: validate measurements against the metric registry, check
their sessions, and append them to the outcome log exactly once.

Rules (each error names the field, `events[3].metrics.mos`, and the problem):
the session exists (`SESSION_NOT_FOUND`) and, when the caller names its
tenant, belongs to it (`CONFLICT`); every metric is in the registry and its
value has the metric's type and bounds; at most `MAX_METRICS_PER_EVENT`
metrics per event and `MAX_EVENTS_PER_REQUEST` events per call; ids follow
`check_identifier`; a turn is an integer in 0..`MAX_TURN`.

A batch is all-or-nothing by default: everything, sessions included (one
round trip), is checked before anything is written, and the first kind of
problem found is raised with every event it concerns. With
`BatchMode.PER_EVENT` the valid events are written and each event's result
says what happened to it. Event ids are the client's or generated (uuid4
hex); an end event's id defaults to `end`, so a session has one end event
unless the client names others. Retrying an event with the same id is safe:
the log stores each (session, event id) once and answers `duplicate`.
"""

from __future__ import annotations

import difflib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .context import check_identifier
from .errors import ErrorCode, ExperimentError
from .eventlog.protocols import AppendResult, AppendStatus, OutcomeLog
from .events import OutcomeEvent, OutcomeKind
from .metrics import MetricRegistry
from .performance import fast_init
from .telemetry import OUTCOME_EVENTS_ACCEPTED, OUTCOME_EVENTS_REJECTED, Children

MAX_EVENTS_PER_REQUEST = 1000
MAX_METRICS_PER_EVENT = 64
MAX_TURN = 2**31 - 1
END_EVENT_ID = "end"
_MESSAGE_ERRORS = 5  # errors spelled out in a message; the context lists them all
_Fail = Callable[[str, str], None]
_ACCEPTED = Children(OUTCOME_EVENTS_ACCEPTED)
_REJECTED = Children(OUTCOME_EVENTS_REJECTED)
BATCH_REFUSED = "batch_refused"
"""The rejection reason of a valid event of an all-or-nothing batch refused for others."""


class BatchMode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    PER_EVENT = "per_event"


class OutcomeStatus(StrEnum):
    """What happened to one event: stored now, stored before (same event id),
    kept in the local spool until Redis is back, or rejected (see its error)."""

    APPENDED = "appended"
    DUPLICATE = "duplicate"
    SPOOLED = "spooled"
    REJECTED = "rejected"


@fast_init
@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """One event as a client sent it, not validated yet (values as parsed from
    JSON). `kind` None means `turn` when a turn is given, else `session`."""

    session_id: object
    metrics: object
    event_id: object = None
    turn: object = None
    kind: OutcomeKind | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class OutcomeProblem:
    """Why one event was rejected: `field` is its path (`events[3].metrics.mos`)."""

    index: int
    code: ErrorCode
    field: str
    problem: str
    session_id: str | None = None
    event_id: str | None = None

    @property
    def message(self) -> str:
        return f"{self.field}: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": str(self.code),
            "field": self.field,
            "problem": self.problem,
            "session_id": self.session_id,
            "event_id": self.event_id,
        }


@fast_init
@dataclass(frozen=True, slots=True)
class OutcomeResult:
    """The fate of the event at `index` of the call; `errors` when rejected."""

    index: int
    session_id: str | None
    event_id: str | None
    status: OutcomeStatus
    stream_id: str | None = None
    errors: tuple[OutcomeProblem, ...] = ()


class OutcomeRejectedError(ExperimentError):
    """Nothing was written: `problems` lists every rejected event (also in
    `context["errors"]`); `code` is the kind of the first one."""

    def __init__(self, problems: Sequence[OutcomeProblem]) -> None:
        shown = "; ".join(p.message for p in problems[:_MESSAGE_ERRORS])
        more = len(problems) - _MESSAGE_ERRORS
        super().__init__(
            shown + (f"; and {more} more" if more > 0 else ""),
            code=problems[0].code,
            context={"errors": [p.to_dict() for p in problems]},
        )
        self.problems = tuple(problems)


@fast_init
@dataclass(frozen=True, slots=True)
class _Valid:
    index: int
    session_id: str
    event_id: str
    kind: OutcomeKind
    turn: int | None
    metrics: tuple[tuple[str, float], ...]


class OutcomeService:
    """Validates and records outcome events; the HTTP routes call this."""

    def __init__(self, log: OutcomeLog, registry: MetricRegistry) -> None:
        self.log = log
        self.registry = registry

    async def record(
        self, report: OutcomeReport, *, tenant_id: str | None = None, owner: str | None = None
    ) -> OutcomeResult:
        """Record one event; raise `OutcomeRejectedError` (fields named without
        an `events[i].` prefix) when it is refused. With `owner` (the caller's
        tenant), another tenant's session is not found, as if it did not exist."""
        [result] = await self._record(
            [report], BatchMode.ALL_OR_NOTHING, (tenant_id, owner), single=True
        )
        return result

    async def record_batch(
        self,
        reports: Sequence[OutcomeReport],
        *,
        mode: BatchMode = BatchMode.ALL_OR_NOTHING,
        tenant_id: str | None = None,
        owner: str | None = None,
    ) -> list[OutcomeResult]:
        """Record up to `MAX_EVENTS_PER_REQUEST` events; one result per event, in order
        (`owner`: as for `record`, per event)."""
        if not reports:
            raise _request_error("events", "must hold at least one event")
        if len(reports) > MAX_EVENTS_PER_REQUEST:
            raise _request_error(
                "events", f"at most {MAX_EVENTS_PER_REQUEST} events per request, got {len(reports)}"
            )
        return await self._record(reports, BatchMode(mode), (tenant_id, owner), single=False)

    async def _record(
        self,
        reports: Sequence[OutcomeReport],
        mode: BatchMode,
        tenants_asked: tuple[str | None, str | None],
        *,
        single: bool,
    ) -> list[OutcomeResult]:
        """`_write`, counted: each event once, as accepted or rejected, per call."""
        try:
            results = await self._write(reports, mode, tenants_asked, single=single)
        except OutcomeRejectedError as exc:
            _count_refused(exc.problems, len(reports))
            raise
        except ExperimentError as exc:  # a bad tenant id, storage unavailable
            _REJECTED.get(exc.code.value).inc(len(reports))
            raise
        _count_results(results)
        return results

    async def _write(
        self,
        reports: Sequence[OutcomeReport],
        mode: BatchMode,
        tenants_asked: tuple[str | None, str | None],
        *,
        single: bool,
    ) -> list[OutcomeResult]:
        tenant_id = tenants_asked[0]
        if tenant_id is not None:
            check_identifier("tenant_id", tenant_id)
        now_ms = time.time_ns() // 1_000_000
        checked = [
            self._check(i, r, "" if single else f"events[{i}].") for i, r in enumerate(reports)
        ]
        problems = _problems(checked)
        if problems and mode is BatchMode.ALL_OR_NOTHING:
            raise OutcomeRejectedError(problems)
        valid = [item for item in checked if isinstance(item, _Valid)]
        tenants = (
            await self.log.session_tenants([item.session_id for item in valid]) if valid else {}
        )
        session_problems = [
            _session_problem(v, tenants, tenants_asked, single) for v in valid
        ]
        if any(session_problems) and mode is BatchMode.ALL_OR_NOTHING:
            raise OutcomeRejectedError(_first_kind([p for p in session_problems if p]))
        writable = [v for v, p in zip(valid, session_problems, strict=True) if p is None]
        events = [_event(v, tenants[v.session_id] or "", now_ms) for v in writable]
        appended = await self.log.append_outcomes(events) if events else []
        results = _results(checked, session_problems, writable, appended, single)
        if single and results[0].status is OutcomeStatus.REJECTED:
            raise OutcomeRejectedError(results[0].errors)
        return results

    def _check(self, index: int, report: OutcomeReport, path: str) -> _Valid | list[OutcomeProblem]:
        """The event checked without I/O, or every problem found in it."""
        problems: list[tuple[str, str]] = []

        def fail(field: str, problem: str) -> None:
            problems.append((path + field, problem))

        session_id = _identifier(report.session_id, "session_id", fail)
        kind = report.kind or (OutcomeKind.SESSION if report.turn is None else OutcomeKind.TURN)
        given = report.event_id
        event_id = _identifier(_default_id(kind) if given is None else given, "event_id", fail)
        turn = _turn(report.turn, kind, fail)
        metrics = self._metrics(report.metrics, kind, fail)
        if problems or session_id is None or event_id is None:
            code = ErrorCode.INVALID_INPUT
            return [OutcomeProblem(index, code, *p, session_id, event_id) for p in problems]
        return _Valid(index, session_id, event_id, kind, turn, metrics)

    def _metrics(
        self, metrics: object, kind: OutcomeKind, fail: _Fail
    ) -> tuple[tuple[str, float], ...]:
        if not isinstance(metrics, Mapping):
            fail("metrics", f"must be an object of metric names to values, got {_kind(metrics)}")
            return ()
        if not metrics and kind is not OutcomeKind.END:
            fail("metrics", "must name at least one metric")
        if len(metrics) > MAX_METRICS_PER_EVENT:
            fail(
                "metrics", f"at most {MAX_METRICS_PER_EVENT} metrics per event, got {len(metrics)}"
            )
            return ()
        values: list[tuple[str, float]] = []
        for name, value in metrics.items():
            metric = self.registry.get(name) if isinstance(name, str) else None
            if metric is None:
                fail(f"metrics.{name}", self._unknown(name))
                continue
            try:
                values.append((name, metric.value_of(value)))
            except ValueError as exc:
                fail(f"metrics.{name}", str(exc))
        return tuple(values)

    def _unknown(self, name: object) -> str:
        known = sorted(self.registry.metrics)
        close = difflib.get_close_matches(str(name), known, n=1)
        if close:
            return f"unknown metric {name!r} (did you mean {close[0]!r}?)"
        return f"unknown metric {name!r}; known: {', '.join(known)}"


def _count_results(results: Sequence[OutcomeResult]) -> None:
    accepted: dict[str, int] = {}
    rejected: dict[str, int] = {}
    for result in results:
        if result.status is OutcomeStatus.REJECTED:
            reason = result.errors[0].code.value
            rejected[reason] = rejected.get(reason, 0) + 1
        else:
            accepted[result.status.value] = accepted.get(result.status.value, 0) + 1
    for status, count in accepted.items():
        _ACCEPTED.get(status).inc(count)
    for reason, count in rejected.items():
        _REJECTED.get(reason).inc(count)


def _count_refused(problems: Sequence[OutcomeProblem], events: int) -> None:
    """A refused call: each event with a problem by its first problem's code, the others
    (valid, refused with the batch) as `batch_refused`."""
    first_code: dict[int, str] = {}
    for problem in problems:
        first_code.setdefault(problem.index, problem.code.value)
    rejected: dict[str, int] = {}
    for reason in first_code.values():
        rejected[reason] = rejected.get(reason, 0) + 1
    if events > len(first_code):
        rejected[BATCH_REFUSED] = events - len(first_code)
    for reason, count in rejected.items():
        _REJECTED.get(reason).inc(count)


def _default_id(kind: OutcomeKind) -> str:
    """The id of an event sent without one (made only then: a uuid4 costs ~2.6 µs)."""
    return END_EVENT_ID if kind is OutcomeKind.END else uuid.uuid4().hex


def _identifier(value: object, field: str, fail: _Fail) -> str | None:
    try:
        return check_identifier(field, value)
    except ExperimentError as exc:
        fail(field, exc.context["problem"])
        return None


def _turn(value: object, kind: OutcomeKind, fail: _Fail) -> int | None:
    if value is None:
        return None
    if kind is not OutcomeKind.TURN:
        fail("turn", f"an event of kind {kind.value!r} has no turn")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TURN:
        fail("turn", f"must be an integer from 0 to {MAX_TURN}, got {value!r}")
        return None
    return value


def _problems(checked: Sequence[_Valid | list[OutcomeProblem]]) -> list[OutcomeProblem]:
    return [p for item in checked if not isinstance(item, _Valid) for p in item]


def _session_problem(
    valid: _Valid,
    tenants: Mapping[str, str | None],
    tenants_asked: tuple[str | None, str | None],
    single: bool,
) -> OutcomeProblem | None:
    """Unknown, or another tenant's than the caller's (`owner`): not found alike;
    another tenant's than the one the request names (`tenant_id`): a conflict."""
    field = "session_id" if single else f"events[{valid.index}].session_id"
    tenant_id, owner = tenants_asked
    stored = tenants.get(valid.session_id)
    if stored is None or (owner is not None and stored != owner):
        code = ErrorCode.SESSION_NOT_FOUND
        problem = f"session {valid.session_id!r} not found (unknown, or expired)"
    elif tenant_id is not None and stored != tenant_id:
        code = ErrorCode.CONFLICT
        problem = f"session {valid.session_id!r} belongs to another tenant than {tenant_id!r}"
    else:
        return None
    return OutcomeProblem(valid.index, code, field, problem, valid.session_id, valid.event_id)


def _first_kind(problems: list[OutcomeProblem]) -> list[OutcomeProblem]:
    """The problems of the most basic kind found: unknown sessions before tenants."""
    missing = [p for p in problems if p.code is ErrorCode.SESSION_NOT_FOUND]
    return missing or problems


def _event(valid: _Valid, tenant_id: str, now_ms: int) -> OutcomeEvent:
    return OutcomeEvent(
        valid.event_id, valid.session_id, tenant_id, now_ms, valid.kind, valid.turn, valid.metrics
    )


_STATUS = {
    AppendStatus.APPENDED: OutcomeStatus.APPENDED,
    AppendStatus.DUPLICATE: OutcomeStatus.DUPLICATE,
    AppendStatus.SPOOLED: OutcomeStatus.SPOOLED,
}


def _results(
    checked: Sequence[_Valid | list[OutcomeProblem]],
    session_problems: Sequence[OutcomeProblem | None],
    writable: Sequence[_Valid],
    appended: Sequence[AppendResult],
    single: bool,
) -> list[OutcomeResult]:
    by_index: dict[int, OutcomeResult] = {}
    for item in checked:
        if not isinstance(item, _Valid):
            by_index[item[0].index] = _rejected(item)
    for problem in filter(None, session_problems):
        by_index[problem.index] = _rejected([problem])
    for valid, result in zip(writable, appended, strict=True):
        by_index[valid.index] = _written(valid, result, single)
    return [by_index[i] for i in range(len(checked))]


def _written(valid: _Valid, result: AppendResult, single: bool) -> OutcomeResult:
    status = _STATUS.get(result.status)
    if status is not None:
        return OutcomeResult(
            valid.index, valid.session_id, valid.event_id, status, result.stream_id
        )
    gone = {valid.session_id: None}  # the session expired between the check and the write
    problem = _session_problem(valid, gone, (None, None), single)
    return _rejected([problem] if problem else [])


def _rejected(problems: Sequence[OutcomeProblem]) -> OutcomeResult:
    first = problems[0]
    return OutcomeResult(
        first.index, first.session_id, first.event_id, OutcomeStatus.REJECTED,
        errors=tuple(problems),
    )  # fmt: skip


def _request_error(field: str, problem: str) -> OutcomeRejectedError:
    return OutcomeRejectedError([OutcomeProblem(-1, ErrorCode.INVALID_INPUT, field, problem)])


def _kind(value: object) -> str:
    return {str: "a string", type(None): "null", list: "an array"}.get(
        type(value), type(value).__name__
    )
