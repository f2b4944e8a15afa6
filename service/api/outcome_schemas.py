"""Request and response bodies of the outcome endpoints.

Values are passed on as the client sent them: `experiments.outcomes` checks
ids, turns and metric values against the metric registry, so that every error
names the field the way the client wrote it (`events[3].metrics.mos`). The
JSON schemas below say what is accepted.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from experiments.context import IDENTIFIER_PATTERN, MAX_ID_LENGTH
from experiments.events import OutcomeKind
from experiments.metrics import METRIC_NAME_PATTERN
from experiments.outcomes import (
    MAX_EVENTS_PER_REQUEST,
    MAX_METRICS_PER_EVENT,
    MAX_TURN,
    BatchMode,
    OutcomeReport,
    OutcomeResult,
    OutcomeStatus,
)

from .body import KeyCountedBody

_ID_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_LENGTH,
    "pattern": IDENTIFIER_PATTERN,
}
Id = Annotated[Any, WithJsonSchema(_ID_SCHEMA)]
OptionalId = Annotated[Any, WithJsonSchema({"anyOf": [_ID_SCHEMA, {"type": "null"}]})]
_TURN_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_TURN}
Turn = Annotated[Any, WithJsonSchema({"anyOf": [_TURN_SCHEMA, {"type": "null"}]})]
MetricValue = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "boolean"}]})]
Metrics = Annotated[
    dict[str, MetricValue],
    Field(
        description="Metric name -> value. Names come from the metric registry; latencies and "
        "continuous metrics take finite numbers within the metric's bounds, counts integers, "
        "proportions true/false or 0/1.",
        json_schema_extra={
            "maxProperties": MAX_METRICS_PER_EVENT,
            "propertyNames": {"pattern": METRIC_NAME_PATTERN},
        },
    ),
]
EVENT_ID = (
    "The event's id (1 to 128 characters, no control characters): send the same id when "
    "retrying and the event is stored once. Unset: a random id is generated, so a retry "
    "is stored again."
)
TURN = "The turn the measurements belong to (0, 1, ...); unset: the whole session."
TENANT = (
    "The caller's tenant; when given, an event for a session of another tenant is refused "
    "with 409 (until authentication supplies the tenant)."
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutcomeIn(_In):
    """Measurements of one session, for one turn or for the whole session."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "6f1c2a9e",
                    "turn": 3,
                    "metrics": {"stt_ttfb_ms": 182.0, "llm_ttft_ms": 410.5, "e2e_latency_ms": 905},
                }
            ]
        }
    )

    event_id: OptionalId = Field(default=None, description=EVENT_ID)
    turn: Turn = Field(default=None, description=TURN)
    metrics: Metrics
    tenant_id: OptionalId = Field(default=None, description=TENANT)

    def to_report(self, session_id: str) -> OutcomeReport:
        return OutcomeReport(session_id, self.metrics, self.event_id, self.turn)


class EndIn(_In):
    """The session ended, with its session-level measurements (may be empty)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"metrics": {"duration_s": 184.2, "cost_usd": 0.031}}]}
    )

    event_id: OptionalId = Field(
        default=None,
        description="Unset: `end`, so a session has one end event and a retry is stored once.",
    )
    metrics: Metrics = Field(default_factory=dict)
    tenant_id: OptionalId = Field(default=None, description=TENANT)

    def to_report(self, session_id: str) -> OutcomeReport:
        return OutcomeReport(session_id, self.metrics, self.event_id, kind=OutcomeKind.END)


class BatchEventIn(_In):
    session_id: Id = Field(description="The session the measurements belong to.")
    event_id: OptionalId = Field(default=None, description=EVENT_ID)
    turn: Turn = Field(default=None, description=TURN)
    metrics: Metrics

    def to_report(self) -> OutcomeReport:
        return OutcomeReport(self.session_id, self.metrics, self.event_id, self.turn)


class BatchIn(_In, KeyCountedBody):
    """Events of any sessions, for collectors that buffer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "session_id": "call-8812",
                            "event_id": "7d02",
                            "metrics": {"task_success": True, "mos": 4.2, "interruptions": 2},
                        }
                    ],
                    "mode": "all_or_nothing",
                }
            ]
        }
    )

    events: list[BatchEventIn] = Field(
        description=f"1 to {MAX_EVENTS_PER_REQUEST} events.",
        json_schema_extra={"minItems": 1, "maxItems": MAX_EVENTS_PER_REQUEST},
    )
    mode: BatchMode = Field(
        default=BatchMode.ALL_OR_NOTHING,
        description="`all_or_nothing`: any invalid event, unknown session or other tenant's "
        "session rejects the whole request and nothing is written. `per_event`: the valid "
        "events are written and each result says what happened to its event.",
    )
    tenant_id: OptionalId = Field(default=None, description=TENANT)

    def json_key_count(self) -> int:
        # Values typed Any (ids, turns, metric values) are not descended into: an
        # object there is counted short, which only sends the body to the exact check.
        # __pydantic_fields_set__ is what model_fields_set returns, without the property.
        events = sum([len(e.__pydantic_fields_set__) + len(e.metrics) for e in self.events])
        return len(self.model_fields_set) + events


class OutcomeOut(BaseModel):
    event_id: str = Field(description="The event's id, given or generated.")
    status: OutcomeStatus = Field(
        description="`appended`: stored now; `duplicate`: this event id was stored before for "
        "this session, nothing written; `spooled`: kept on local disk while Redis is away, "
        "stored once it is back."
    )


class EventErrorOut(BaseModel):
    code: str = Field(description="`invalid_input`, `session_not_found` or `conflict`.")
    field: str = Field(description="Where: `events[3].metrics.mos`.")
    message: str


class EventResultOut(BaseModel):
    index: int = Field(description="Position of the event in `events`.")
    session_id: str | None
    event_id: str | None
    status: OutcomeStatus = Field(description="As for one event, or `rejected` (per_event only).")
    errors: list[EventErrorOut] = Field(description="Why it was rejected; empty otherwise.")


class BatchOut(BaseModel):
    results: list[EventResultOut] = Field(description="One per event, in request order.")
    counts: dict[str, int] = Field(description="Events per status.")


def outcome_out(result: OutcomeResult) -> dict[str, Any]:
    return {"event_id": result.event_id, "status": result.status.value}


def batch_out(results: list[OutcomeResult]) -> dict[str, Any]:
    counts = dict.fromkeys((status.value for status in OutcomeStatus), 0)
    for result in results:
        counts[result.status.value] += 1
    return {"results": [_result_out(r) for r in results], "counts": counts}


def _result_out(result: OutcomeResult) -> dict[str, Any]:
    return {
        "index": result.index,
        "session_id": result.session_id,
        "event_id": result.event_id,
        "status": result.status.value,
        "errors": [
            {"code": e.code.value, "field": e.field, "message": e.message} for e in result.errors
        ],
    }
