"""Session creation: route a session once, pin the route, record its assignments.

The route of a session never changes: the first creation stores the session
document and appends its assignment event in one step (see `SessionLog`); a
later creation with the same session id gets the stored document back and
writes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import Counter

from .context import RouteContext
from .errors import ErrorCode, ExperimentError, SessionNotFoundError
from .eventlog.protocols import SessionLog
from .events import Assignment, AssignmentEvent
from .router import Router, RoutingDecision
from .telemetry import SESSION_PROVIDERS, SESSIONS_CREATED

RouteObserver = Callable[[RouteContext, RoutingDecision, bool], None]
"""Called with the context, the routing decision and whether the call created the session."""


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The session document (JSON bytes, as stored) and whether this call created it."""

    document: bytes
    created: bool


class SessionService:
    """Creates and reads sessions; the HTTP layer and the CLI both call this.

    `on_routed`, when set (tracing sets it), sees every creation that succeeded."""

    def __init__(
        self, router: Router, log: SessionLog, *, on_routed: RouteObserver | None = None
    ) -> None:
        self.router = router
        self.log = log
        self.on_routed = on_routed

    async def create(self, context: RouteContext) -> SessionResult:
        """Route `context` and pin the route; idempotent on the session id."""
        context.validate(self.router.catalog.region_set)
        decision = self.router.select_route(context)
        now_ms = time.time_ns() // 1_000_000
        document = orjson.dumps(session_document(context, decision, now_ms))
        event = AssignmentEvent(
            event_id=uuid.uuid4().hex,
            session_id=context.session_id,
            tenant_id=context.tenant_id,
            region=context.region,
            ts_ms=now_ms,
            assignments=decision.assignments,
            features=dict(context.features),
            attributes=dict(context.attributes),
        )
        result = await self.log.create_session(context.session_id, document, event)
        if result.created:
            _count_created(context.region, decision)
        else:
            _check_same_tenant(context, result.document)
        if self.on_routed is not None:
            self.on_routed(context, decision, result.created)
        return SessionResult(result.document, result.created)

    async def get(self, session_id: str, *, owner: str | None = None) -> bytes:
        """The stored document; a session of another tenant than `owner` (when
        given) is not found, as if it did not exist."""
        document = await self.log.get_session(session_id)
        if document is not None and owner is not None and _tenant_of(document) != owner:
            document = None
        if document is None:
            raise SessionNotFoundError(
                f"session {session_id!r} not found (unknown, or expired)",
                context={"session_id": session_id},
            )
        return document


_COUNTERS_LIMIT = 4_096
_counters: dict[tuple[str, ...], tuple[Counter, ...]] = {}
"""The counter children a new session increments (sessions by region and mode, providers
by region and component), by region, mode and provider ids, which the catalog bounds."""


def _count_created(region: str, decision: RoutingDecision) -> None:
    parts = decision.parts
    key = (region, decision.mode.value, *(p["id"] if p else "" for p in parts.values()))
    children = _counters.get(key)
    if children is None:
        children = (
            SESSIONS_CREATED.labels(region, decision.mode.value),
            *(SESSION_PROVIDERS.labels(region, part, p["id"]) for part, p in parts.items() if p),
        )
        if len(_counters) >= _COUNTERS_LIMIT:
            _counters.clear()
        _counters[key] = children
    for child in children:
        child.inc()


def session_document(
    context: RouteContext, decision: RoutingDecision, now_ms: int
) -> dict[str, Any]:
    """The session as the API returns it; nested objects may be shared with other
    documents (the route's providers, unsplit assignments): read them, do not change them."""
    return {
        "session_id": context.session_id,
        "tenant_id": context.tenant_id,
        "region": context.region,
        "created_at": _created_at(now_ms),
        "features": dict(context.features),
        "attributes": dict(context.attributes),
        "route": {"mode": decision.mode.value, **decision.parts},
        "assignments": [_assignment_dict(a) for a in decision.assignments],
        "fallbacks": [fallback.to_dict() for fallback in decision.fallbacks],
    }


_last_second: list[tuple[int, str]] = [(0, "1970-01-01T00:00:00")]
"""The last second formatted by `_created_at` and its text (to the second)."""


def _created_at(now_ms: int) -> str:
    """`now_ms` as ISO 8601 UTC with milliseconds and `Z`: `2026-01-02T03:04:05.678Z`."""
    second, millis = divmod(now_ms, 1000)
    last_second, text = _last_second[0]
    if last_second != second:
        text = datetime.fromtimestamp(second, tz=UTC).isoformat(timespec="seconds")[:-6]
        _last_second[0] = (second, text)
    return f"{text}.{millis:03d}Z"


_ASSIGNMENT_DICT_LIMIT = 4_096
_assignment_dicts: dict[int, tuple[Assignment, dict[str, Any]]] = {}
"""The document form of assignments without a split, by the id of the (router-cached,
hence shared) `Assignment`; the entry keeps its assignment alive so the id stays its."""


def _assignment_dict(assignment: Assignment) -> dict[str, Any]:
    if assignment.split_id is not None:
        return _new_assignment_dict(assignment)
    entry = _assignment_dicts.get(id(assignment))
    if entry is not None and entry[0] is assignment:
        return entry[1]
    body = _new_assignment_dict(assignment)
    if len(_assignment_dicts) >= _ASSIGNMENT_DICT_LIMIT:
        _assignment_dicts.clear()
    _assignment_dicts[id(assignment)] = (assignment, body)
    return body


def _new_assignment_dict(assignment: Assignment) -> dict[str, Any]:
    body: dict[str, Any] = {
        "flag_key": assignment.flag_key,
        "variant": assignment.variant,
        "value": assignment.value,
        "reason": assignment.reason,
        "flag_version": assignment.flag_version,
    }
    if assignment.error_code is not None:
        body["error_code"] = assignment.error_code
    if assignment.split_id is not None:
        body["split"] = {
            "id": assignment.split_id,
            "weights": dict(assignment.split_weights or ()),
            "bucket_unit": assignment.bucket_unit,
            "bucket_key": assignment.bucket_key,
        }
    return body


def _tenant_of(document: bytes) -> object:
    return orjson.loads(document).get("tenant_id")


def _check_same_tenant(context: RouteContext, stored: bytes) -> None:
    if _tenant_of(stored) != context.tenant_id:
        raise ExperimentError(
            f"session {context.session_id!r} already exists for another tenant",
            code=ErrorCode.CONFLICT,
            context=context.as_log_context(),
        )
