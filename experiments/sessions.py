"""Session creation: route a session once, pin the route, record its assignments.

The route of a session never changes: the first creation stores the session
document and appends its assignment event in one step (see `SessionLog`); a
later creation with the same session id gets the stored document back and
writes nothing.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from .context import RouteContext
from .errors import ErrorCode, ExperimentError, SessionNotFoundError
from .eventlog.protocols import SessionLog
from .events import Assignment, AssignmentEvent
from .router import Router, RoutingDecision
from .telemetry import SESSIONS_CREATED


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The session document (JSON bytes, as stored) and whether this call created it."""

    document: bytes
    created: bool


class SessionService:
    """Creates and reads sessions; the HTTP layer and the CLI both call this."""

    def __init__(self, router: Router, log: SessionLog) -> None:
        self.router = router
        self.log = log

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
            SESSIONS_CREATED.inc(decision.mode.value)
        else:
            _check_same_tenant(context, result.document)
        return SessionResult(result.document, result.created)

    async def get(self, session_id: str) -> bytes:
        document = await self.log.get_session(session_id)
        if document is None:
            raise SessionNotFoundError(
                f"session {session_id!r} not found (unknown, or expired)",
                context={"session_id": session_id},
            )
        return document


def session_document(
    context: RouteContext, decision: RoutingDecision, now_ms: int
) -> dict[str, Any]:
    """The session as the API returns it."""
    created_at = datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return {
        "session_id": context.session_id,
        "tenant_id": context.tenant_id,
        "region": context.region,
        "created_at": created_at.replace("+00:00", "Z"),
        "features": dict(context.features),
        "attributes": dict(context.attributes),
        "route": decision.route_dict(),
        "assignments": [_assignment_dict(a) for a in decision.assignments],
        "fallbacks": [fallback.to_dict() for fallback in decision.fallbacks],
    }


def _assignment_dict(assignment: Assignment) -> dict[str, Any]:
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


def _check_same_tenant(context: RouteContext, stored: bytes) -> None:
    tenant = orjson.loads(stored).get("tenant_id")
    if tenant != context.tenant_id:
        raise ExperimentError(
            f"session {context.session_id!r} already exists for another tenant",
            code=ErrorCode.CONFLICT,
            context=context.as_log_context(),
        )
