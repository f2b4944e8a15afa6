"""Every Prometheus metric of voxroute, declared once (prometheus-client objects
on its default registry; `service.observability.prometheus` serves them).

Label values come from bounded sets only: route templates, method and status,
the catalog's regions, providers and routing flags, enum values. Tenants,
session ids and other client-chosen strings are never labels.

Under `voxroute serve --workers N` prometheus-client runs in its multiprocess
mode (`PROMETHEUS_MULTIPROC_DIR`, set before this module is imported): each
process writes its samples to its own files and a scrape merges them. Gauges
therefore say how the processes' values combine (`livesum`: the sum over the
live processes).

On hot paths, take a metric's child for a label tuple once and keep it
(`Children`): `.labels(...)` checks and converts its arguments under a lock on
every call.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

_M = TypeVar("_M", bound=MetricWrapperBase)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_EVALUATION_BUCKETS = (25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 0.001, 0.0025, 0.005, 0.01, 0.025)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

HTTP_REQUEST_SECONDS = Histogram(
    "voxroute_http_request_duration_seconds",
    "Time to serve an HTTP request, by method, route template (`unmatched` when no "
    "route matched) and status.",
    ("method", "route", "status"),
    buckets=_LATENCY_BUCKETS,
)
SESSIONS_CREATED = Counter(
    "voxroute_sessions_created_total", "Sessions created, by region and mode.", ("region", "mode")
)
SESSION_PROVIDERS = Counter(
    "voxroute_session_providers_total",
    "Sessions created, by region, route component (stt, tts, s2s, vad, turn_detection) "
    "and the provider chosen for it.",
    ("region", "component", "provider"),
)
ROUTE_FALLBACKS = Counter(
    "voxroute_route_fallbacks_total",
    "Route parts that fell back to the catalog default, by part, flag and reason.",
    ("part", "flag", "reason"),
)
FLAG_EVALUATION_SECONDS = Histogram(
    "voxroute_flag_evaluation_seconds",
    "Time to evaluate the routing flags of one session and choose its route.",
    buckets=_EVALUATION_BUCKETS,
)
STREAM_WRITE_SECONDS = Histogram(
    "voxroute_stream_write_seconds",
    "Time of one group commit to Redis (one round trip for many writes), by log.",
    ("log",),
    buckets=_LATENCY_BUCKETS,
)
GROUP_COMMIT_BATCH_SIZE = Histogram(
    "voxroute_group_commit_batch_size",
    "Writes carried by one group commit, by log.",
    ("log",),
    buckets=_BATCH_BUCKETS,
)
SPOOL_DEPTH = Gauge(
    "voxroute_spool_depth",
    "Records in the local spools waiting to be replayed into Redis.",
    multiprocess_mode="livesum",
)
SPOOLED_RECORDS = Counter(
    "voxroute_spooled_records_total",
    "Writes kept in the local spool while Redis was away, by record (session, outcome).",
    ("record",),
)
SPOOL_REPLAYED_RECORDS = Counter(
    "voxroute_spool_replayed_records_total",
    "Spool records sent to Redis once it answered, by record and result (appended; "
    "duplicate: Redis had it already; set_aside: refused for good, see rejected.jsonl).",
    ("record", "result"),
)
OUTCOME_EVENTS_ACCEPTED = Counter(
    "voxroute_outcome_events_accepted_total",
    "Outcome events accepted, by status (appended, duplicate, spooled).",
    ("status",),
)
OUTCOME_EVENTS_REJECTED = Counter(
    "voxroute_outcome_events_rejected_total",
    "Outcome events not stored, by reason (the error code; batch_refused: a valid event "
    "of an all_or_nothing batch refused for another event).",
    ("reason",),
)
REDIS_ERRORS = Counter(
    "voxroute_redis_errors_total",
    "Redis operations that failed, by operation and kind (timeout, connection, "
    "response, other); every caller of a failed group commit counts once.",
    ("operation", "kind"),
)
AUTH_FAILURES = Counter(
    "voxroute_auth_failures_total",
    "Requests refused by authentication or authorization, by reason (missing, unknown, "
    "forbidden, other_tenant).",
    ("reason",),
)
RATE_LIMITED = Counter(
    "voxroute_rate_limited_total", "Requests refused by a rate limit, by role.", ("role",)
)
WORKERS = Gauge("voxroute_workers", "Processes serving the API.", multiprocess_mode="livesum")


class Children(Generic[_M]):
    """The children of `metric`, one per tuple of label values, made once each."""

    def __init__(self, metric: _M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], _M] = {}

    def get(self, *values: str) -> _M:
        child = self._children.get(values)
        if child is None:
            child = self._metric.labels(*values)
            self._children[values] = child
        return child
