"""The API against its own OpenAPI document (schemathesis): no 5xx, every response
documented (status, content type, headers, body schema), invalid input refused and
valid input taken, for every operation and along the documented links between them
(POST /v1/sessions -> GET, outcomes, end; GET /v1/flags/{key} -> PUT, PATCH,
DELETE, history, rollback with its ETag), on a real Redis under uvicorn.

Bounded for CI: a fixed seed, derandomized generation, `EXAMPLES` fuzzed requests
per operation besides the examples and coverage phases, `STATEFUL_RUNS` link
sequences of at most `STATEFUL_STEPS` calls. The counts are in pytest's summary
(`FuzzTally`, tests/service/conftest.py)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from redis_process import free_port, wait_for
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection

from experiments.catalog import load_catalog
from experiments.metrics import load_default_registry
from service.main import create_app
from service.settings import Settings, get_settings

SEED = 20261201
EXAMPLES = 25
STATEFUL_RUNS = 40
STATEFUL_STEPS = 10
# The key sets the API is called with, each in a run of its own: the headers sent,
# and (KEY_SETTINGS) the keys the server knows, one of each role; `anonymous`
# sends none (every operation but the health ones is then a documented 401).
KEY_SETS = {
    "admin": {"Authorization": "Bearer fuzz-admin-token"},
    "tenant": {"Authorization": "Bearer fuzz-tenant-token"},
    "reader": {"Authorization": "Bearer fuzz-reader-token"},
    "anonymous": {},
}
KEY_SETTINGS = {
    "admin_keys": "admin:fuzz-admin-token",
    "tenant_keys": "acme:fuzz-tenant-token",
    "reader_keys": "dash:fuzz-reader-token",
}

# schemathesis' default for `positive_data_acceptance`, plus what a schema-valid
# request may still get from each operation, as its description documents: the
# catalog's regions, the metric registry's names and bounds, flagd's rules for a
# flag set (and a reason when a running split changes) are data read at run time,
# and PUT needs one of two headers (If-Match or If-None-Match: *) or answers 428.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
RUNTIME_RULES = {
    "POST /v1/sessions": ["422"],
    "POST /v1/sessions/{session_id}/outcomes": ["422"],
    "POST /v1/sessions/{session_id}/end": ["422"],
    "POST /v1/outcomes": ["422"],
    "POST /v1/flags": ["422"],
    "PUT /v1/flags/{key}": ["422", "428"],
    "PATCH /v1/flags/{key}": ["422"],
    "DELETE /v1/flags/{key}": ["422"],
    "POST /v1/flags/{key}/rollback": ["422"],
    "GET /v1/experiments/{flag_key}/results": ["422"],
}
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "cache": {"enabled": False},  # no replay of earlier runs' failures: the seed decides
        "generation": {"max-examples": EXAMPLES, "deterministic": True},
        "operations": [
            *(
                {
                    "include-name": name,
                    "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED + more}},
                }
                for name, more in RUNTIME_RULES.items()
            ),
            # The audit outlives a deleted flag: its history stays readable (and
            # rollback restores the flag from it), so a 200 after DELETE is right.
            {
                "include-name": "GET /v1/flags/{key}/history",
                "checks": {"use_after_free": {"enabled": False}},
            },
        ],
    }
)
HYPOTHESIS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
# The document as served; building it needs no Redis.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi(), config=CONFIG)
REGIONS = load_catalog(Settings().catalog_path).regions
METRICS = load_default_registry()
SHIPPED_FLAGS = json.loads(Settings().flags_path.read_text())
SESSION_MEASUREMENTS = (
    "POST /v1/sessions/{session_id}/outcomes",
    "POST /v1/sessions/{session_id}/end",
)


@dataclass
class Server:
    url: str
    key_set: str
    headers: dict[str, str]


@pytest.fixture(scope="module", params=list(KEY_SETS))
def server(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """voxroute under uvicorn in a thread, on a key prefix of its own, called with
    one key set's headers; the operations of the module share it, so the state
    their calls leave (sessions, flag changes) is what the next ones meet."""
    prefix = f"vrtest:{uuid.uuid4().hex}"
    data_dir = tmp_path_factory.mktemp("fuzz") / "voxroute"
    app_settings = Settings(
        redis_url=redis_url, key_prefix=prefix, data_dir=data_dir, gc_tuned=False, **KEY_SETTINGS
    )
    app = create_app(app_settings)
    app.dependency_overrides[get_settings] = lambda: app_settings
    port = free_port()
    config = uvicorn.Config(app, port=port, log_level="warning", access_log=False, ws="none")
    uv_server = uvicorn.Server(config)
    thread = threading.Thread(target=uv_server.run, name="voxroute-fuzz", daemon=True)
    thread.start()
    try:
        wait_for(lambda: uv_server.started, "voxroute under uvicorn", timeout_s=30)
        yield Server(f"http://127.0.0.1:{port}", request.param, KEY_SETS[request.param])
    finally:
        uv_server.should_exit = True
        thread.join(timeout=30)
        with redis.Redis.from_url(redis_url) as conn:
            keys = list(conn.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                conn.delete(*keys)


def _excluded_checks(case: Any) -> list[Any]:
    """`per_event` batches answer 202 and reject each invalid event in the body
    (documented on POST /v1/outcomes), so schema-invalid events are not a 4xx."""
    body = case.body if isinstance(case.body, dict) else {}
    per_event = case.operation.label == "POST /v1/outcomes" and body.get("mode") == "per_event"
    return [negative_data_rejection] if per_event else []


@schema.parametrize()
@settings(HYPOTHESIS, max_examples=EXAMPLES)
def test_every_operation_conforms(case: Any, server: Server, fuzz_tally: Any) -> None:
    fuzz_tally.record(case.operation.label, server.key_set)
    case.call_and_validate(
        base_url=server.url, headers=server.headers, excluded_checks=_excluded_checks(case)
    )


def _steer(case: Any, scenario: str) -> None:
    """Give a generated session an id of this scenario and a catalog region, and its
    measurements registry names, so that link sequences get past the run-time rules
    to the next call (the per-operation test fuzzes these fields)."""
    body = case.body
    if not isinstance(body, dict) or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return
    label = case.operation.label
    if label == "POST /v1/sessions" and isinstance(body.get("session_id"), str):
        session_id = body["session_id"]
        if not session_id.startswith(scenario):
            body["session_id"] = f"{scenario}{session_id}"[:128]
        body["region"] = REGIONS[len(session_id) % len(REGIONS)]
    elif label in SESSION_MEASUREMENTS and isinstance(body.get("metrics"), dict):
        known = {name: value for name, value in body["metrics"].items() if name in METRICS}
        body["metrics"] = known or {"e2e_latency_ms": 900.0}


def _reset_flags(server: Server) -> None:
    """The shipped flag set again (as a new version), so that every scenario starts
    from the same flags whatever the ones before it changed."""
    body = {"flag_set": SHIPPED_FLAGS, "reason": "next stateful scenario"}
    admin = KEY_SETS["admin"]
    response = httpx.post(f"{server.url}/v1/flags", json=body, headers=admin, timeout=30)
    assert response.status_code == 200, response.text


def test_the_links_between_operations_conform(server: Server, fuzz_tally: Any) -> None:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            fuzz_tally.stateful_runs += 1
            self.scenario = f"s{fuzz_tally.stateful_runs}-"
            _reset_flags(server)

        def before_call(self, case: Any) -> None:
            _steer(case, self.scenario)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            fuzz_tally.record(case.operation.label, server.key_set, stateful=True)
            return {"base_url": server.url, "headers": server.headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(
                response,
                excluded_checks=_excluded_checks(case),
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    # No shrinking: replaying a sequence meets the state the first run left, so the
    # first failure is reported as it happened.
    Workflow.run(
        settings=settings(
            HYPOTHESIS,
            max_examples=STATEFUL_RUNS,
            stateful_step_count=STATEFUL_STEPS,
            phases=[Phase.explicit, Phase.generate],
        )
    )
