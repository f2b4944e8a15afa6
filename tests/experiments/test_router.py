"""Routing semantics with a scripted OpenFeature client (pure logic)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason

from experiments.catalog import Catalog, load_catalog
from experiments.context import RouteContext
from experiments.errors import NoRouteError
from experiments.router import FallbackReason, Router, StringResolver
from experiments.telemetry import ROUTE_FALLBACKS

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
    before = ROUTE_FALLBACKS.value("stt", "stt-provider", reason.value)
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
    assert ROUTE_FALLBACKS.value("stt", "stt-provider", reason.value) == before + 1
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
