"""Routing semantics with a scripted OpenFeature client (pure logic)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason
from prometheus_samples import sample

from experiments.catalog import Catalog, load_catalog
from experiments.context import RouteContext
from experiments.errors import NoRouteError
from experiments.events import AssignmentEvent
from experiments.router import FallbackReason, Router, StringResolver
from experiments.sessions import session_document

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "defaults" / "catalog.yaml"


class ScriptedClient:
    """Answers each flag key with a prepared result; records what was asked."""

    def __init__(self, answers: Mapping[str, FlagEvaluationDetails[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def string_resolver(self) -> StringResolver:
        return self.get_string_details

    def get_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagEvaluationDetails[str]:
        self.asked.append(flag_key)
        answer = self.answers.get(flag_key)
        if answer is None:
            return FlagEvaluationDetails(
                flag_key, default_value, reason=Reason.ERROR, error_code=ErrorCode.FLAG_NOT_FOUND
            )
        return answer


def _static(flag_key: str, value: str) -> FlagEvaluationDetails[str]:
    return FlagEvaluationDetails(flag_key, value, variant=value, reason=Reason.STATIC)


PIPELINE = {
    "voice-mode": _static("voice-mode", "pipeline"),
    "stt-provider": _static("stt-provider", "assemblyai/universal-streaming"),
    "tts-provider": _static("tts-provider", "cartesia/sonic-2"),
    "s2s-provider": _static("s2s-provider", "google/gemini-live"),
    "vad-provider": _static("vad-provider", "webrtc"),
    "turn-detector": _static("turn-detector", "smart-turn"),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG)


def _ctx(region: str = "eu", tenant: str = "acme") -> RouteContext:
    return RouteContext("call-1", tenant, region, {"s2s": False}, {})


def test_pipeline_mode_routes_stt_and_tts_and_evaluates_only_those(catalog: Catalog) -> None:
    client = ScriptedClient(PIPELINE)
    decision = Router(client, catalog).select_route(_ctx())
    route = decision.route_dict()
    assert route["mode"] == "pipeline"
    assert route["stt"]["id"] == "assemblyai/universal-streaming"
    assert route["tts"]["config"]["voice_id"] == "acme-brand-voice"
    assert route["s2s"] is None
    assert "s2s-provider" not in client.asked
    assert [a.flag_key for a in decision.assignments] == [
        "voice-mode",
        "stt-provider",
        "tts-provider",
        "vad-provider",
        "turn-detector",
    ]
    assert decision.fallbacks == ()
    assert all(a.fallback is None and a.used is None for a in decision.assignments)


def test_s2s_mode_routes_s2s_and_no_stt_or_tts(catalog: Catalog) -> None:
    answers = {**PIPELINE, "voice-mode": _static("voice-mode", "s2s")}
    client = ScriptedClient(answers)
    route = Router(client, catalog).select_route(_ctx()).route_dict()
    assert (route["stt"], route["tts"]) == (None, None)
    assert route["s2s"]["id"] == "google/gemini-live"
    assert route["vad"]["id"] == "webrtc"
    assert "stt-provider" not in client.asked


def _with(
    flag_key: str, details: FlagEvaluationDetails[str]
) -> dict[str, FlagEvaluationDetails[str]]:
    answers = dict(PIPELINE)
    answers[flag_key] = details
    return answers


@pytest.mark.parametrize(
    ("answer", "region", "reason"),
    [
        (None, "eu", FallbackReason.FLAG_NOT_FOUND),
        (
            FlagEvaluationDetails("stt-provider", "", reason=Reason.DISABLED),
            "eu",
            FallbackReason.FLAG_DISABLED,
        ),
        (
            FlagEvaluationDetails(
                "stt-provider", "", reason=Reason.ERROR, error_code=ErrorCode.PARSE_ERROR
            ),
            "eu",
            FallbackReason.FLAG_ERROR,
        ),
        (_static("stt-provider", "nobody/none"), "eu", FallbackReason.UNKNOWN_PROVIDER),
        (_static("stt-provider", "silero"), "eu", FallbackReason.WRONG_KIND),
        (
            _static("stt-provider", "assemblyai/universal-streaming"),
            "ap",
            FallbackReason.UNAVAILABLE_IN_REGION,
        ),
    ],
)
def test_an_unusable_flag_falls_back_to_the_default_and_says_why(
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
    answer: FlagEvaluationDetails[str] | None,
    region: str,
    reason: FallbackReason,
) -> None:
    answers = dict(PIPELINE)
    if answer is None:
        del answers["stt-provider"]
    else:
        answers["stt-provider"] = answer
    labels = {"part": "stt", "flag": "stt-provider", "reason": reason.value}
    before = sample("voxroute_route_fallbacks_total", **labels)
    with caplog.at_level(logging.WARNING, logger="voxroute.router"):
        decision = Router(ScriptedClient(answers), catalog).select_route(_ctx(region))
    assert decision.route_dict()["stt"]["id"] == "deepgram/nova-3"
    (fallback,) = [f for f in decision.fallbacks if f.part == "stt"]
    assert (fallback.reason, fallback.used) == (reason, "deepgram/nova-3")
    by_flag = {a.flag_key: a for a in decision.assignments}
    assert (by_flag["stt-provider"].fallback, by_flag["stt-provider"].used) == (
        reason.value,
        "deepgram/nova-3",
    )
    fell_back = {k: (a.fallback, a.used) for k, a in by_flag.items() if a.fallback is not None}
    assert fell_back == {f.flag_key: (f.reason.value, f.used) for f in decision.fallbacks}
    assert sample("voxroute_route_fallbacks_total", **labels) == before + 1
    (record,) = [r for r in caplog.records if "flag=stt-provider" in r.getMessage()]
    for needle in ("session=call-1", "tenant=acme", f"region={region}", "flag=stt-provider"):
        assert needle in record.getMessage()


def test_a_broken_mode_flag_falls_back_to_the_pipeline(catalog: Catalog) -> None:
    answers = _with("voice-mode", _static("voice-mode", "telepathy"))
    decision = Router(ScriptedClient(answers), catalog).select_route(_ctx())
    assert decision.mode.value == "pipeline"
    assert decision.fallbacks[0].part == "mode"
    mode = decision.assignments[0]
    assert (mode.flag_key, mode.value) == ("voice-mode", "telepathy")
    assert (mode.fallback, mode.used) == ("unknown_provider", "pipeline")


def test_no_route_at_all_is_an_error_carrying_the_routing_context(catalog: Catalog) -> None:
    # A catalog whose TTS default is missing in the session's region cannot route it.
    broken = Catalog(
        regions=catalog.regions,
        providers=catalog.providers,
        defaults={**catalog.defaults, "tts": "cartesia/sonic-2"},  # type: ignore[dict-item]
        region_defaults=catalog.region_defaults,
        tenants=catalog.tenants,
        routing=catalog.routing,
    )
    answers = _with("tts-provider", _static("tts-provider", "nobody/none"))
    with pytest.raises(NoRouteError) as caught:
        Router(ScriptedClient(answers), broken).select_route(_ctx("ap"))
    assert caught.value.context == {
        "session_id": "call-1",
        "tenant_id": "acme",
        "region": "ap",
        "flag_key": "tts-provider",
        "part": "tts",
    }


def test_provider_configs_are_cached_until_invalidated(catalog: Catalog) -> None:
    router = Router(ScriptedClient(PIPELINE), catalog)
    first = router.select_route(_ctx()).parts["tts"]
    assert router.select_route(_ctx()).parts["tts"] is first
    router.invalidate()
    assert router.select_route(_ctx()).parts["tts"] is not first


def test_unsplit_assignments_are_shared_until_invalidated(catalog: Catalog) -> None:
    router = Router(ScriptedClient(PIPELINE), catalog)
    first = router.select_route(_ctx()).assignments
    again = router.select_route(_ctx()).assignments
    assert all(a is b for a, b in zip(first, again, strict=True))
    router.invalidate()
    fresh = router.select_route(_ctx()).assignments
    assert fresh == first
    assert all(a is not b for a, b in zip(first, fresh, strict=True))


_SPLIT = FlagEvaluationDetails(
    "stt-provider",
    "assemblyai/universal-streaming",
    variant="assemblyai",
    flag_metadata={
        "voxroute.flag_version": 7,
        "voxroute.split_id": "stt-split",
        "voxroute.split_weights": '{"assemblyai": 50, "deepgram": 50}',
        "voxroute.bucket_unit": "session_id",
        "voxroute.bucket_key": "call-1",
    },
    reason=Reason.SPLIT,
)
_UNKNOWN = FlagEvaluationDetails(
    "vad-provider", "nobody/none", variant="x", flag_metadata={"voxroute.flag_version": "3"},
    reason=Reason.TARGETING_MATCH,
)  # fmt: skip
EXPECTED_DOCUMENT = (
    b'{"session_id":"call-1","tenant_id":"acme","region":"eu","created_at":'
    b'"2026-03-04T05:06:07.089Z","features":{"s2s":false},"attributes":{"plan":"pro"},'
    b'"route":{"mode":"pipeline","stt":{"id":"assemblyai/universal-streaming","kind":"'
    b'stt","vendor":"assemblyai","model":"universal-streaming","config":{"language":"e'
    b'n","end_of_turn_confidence_threshold":0.7}},"tts":{"id":"cartesia/sonic-2","kind'
    b'":"tts","vendor":"cartesia","model":"sonic-2","config":{"voice_id":"acme-brand-v'
    b'oice","sample_rate":16000}},"s2s":null,"vad":{"id":"silero","kind":"vad","vendor'
    b'":"silero","model":"silero-vad","config":{"confidence":0.7,"start_secs":0.2,"sto'
    b'p_secs":0.8}},"turn_detection":{"id":"smart-turn","kind":"turn_detection","vendo'
    b'r":"pipecat","model":"smart-turn-v3","config":{"stop_secs":3.0}}},"assignments":'
    b'[{"flag_key":"voice-mode","variant":"pipeline","value":"pipeline","reason":"STAT'
    b'IC","flag_version":""},{"flag_key":"stt-provider","variant":"assemblyai","value"'
    b':"assemblyai/universal-streaming","reason":"SPLIT","flag_version":"7","split":{"'
    b'id":"stt-split","weights":{"assemblyai":50,"deepgram":50},"bucket_unit":"session'
    b'_id","bucket_key":"call-1"}},{"flag_key":"tts-provider","variant":"cartesia/soni'
    b'c-2","value":"cartesia/sonic-2","reason":"STATIC","flag_version":""},{"flag_key"'
    b':"vad-provider","variant":"x","value":"nobody/none","reason":"TARGETING_MATCH","'
    b'flag_version":"3"},{"flag_key":"turn-detector","variant":"smart-turn","value":"s'
    b'mart-turn","reason":"STATIC","flag_version":""}],"fallbacks":[{"part":"vad","fla'
    b'g_key":"vad-provider","reason":"unknown_provider","detail":"unknown provider \'no'
    b'body/none\'","requested":"nobody/none","used":"silero"}]}'
)
EXPECTED_ASSIGNMENTS = (
    b'[["voice-mode","","pipeline","pipeline","STATIC",null,null,null,null,null,null,n'
    b'ull],["stt-provider","7","assemblyai","assemblyai/universal-streaming","SPLIT",n'
    b'ull,"session_id","call-1","stt-split",[["assemblyai",50],["deepgram",50]],null,n'
    b'ull],["tts-provider","","cartesia/sonic-2","cartesia/sonic-2","STATIC",null,null'
    b',null,null,null,null,null],["vad-provider","3","x","nobody/none","TARGETING_MATC'
    b'H",null,null,null,null,null,"unknown_provider","silero"],["turn-detector","","sm'
    b'art-turn","smart-turn","STATIC",null,null,null,null,null,null,null]]'
)


def test_the_session_document_and_stream_entry_are_byte_for_byte_stable(
    catalog: Catalog,
) -> None:
    answers = {**PIPELINE, "stt-provider": _SPLIT, "vad-provider": _UNKNOWN}
    router = Router(ScriptedClient(answers), catalog)
    context = RouteContext("call-1", "acme", "eu", {"s2s": False}, {"plan": "pro"})
    now_ms = 1_772_600_767_089  # 2026-03-04T05:06:07.089Z
    for _ in range(3):  # the first call fills the caches, the later ones use them
        decision = router.select_route(context)
        assert orjson.dumps(session_document(context, decision, now_ms)) == EXPECTED_DOCUMENT
        event = AssignmentEvent("e1", "call-1", "acme", "eu", now_ms, decision.assignments)
        assert event.encode()["assignments"] == EXPECTED_ASSIGNMENTS
    assert (
        AssignmentEvent.decode({k.encode(): v for k, v in event.encode().items()}).assignments
        == decision.assignments
    )


@pytest.mark.parametrize(
    "now_ms", [0, 999, 1_000, 1_772_600_767_089, 1_772_600_767_999, 86_399_999]
)
def test_created_at_is_iso_8601_utc_with_milliseconds(catalog: Catalog, now_ms: int) -> None:
    decision = Router(ScriptedClient(PIPELINE), catalog).select_route(_ctx())
    for _ in range(2):
        created_at = session_document(_ctx(), decision, now_ms)["created_at"]
        iso = datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
        assert created_at == iso.replace("+00:00", "Z")
