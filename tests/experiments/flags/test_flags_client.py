"""RoutingFlagClient gives the SDK's results, and lets hooks and contexts see them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from experiments.flags import VoxrouteProvider, load_default_flag_set
from experiments.flags.client import RoutingFlagClient

FLAGS = ["voice-mode", "stt-provider", "tts-provider", "s2s-provider", "vad-provider", "nope"]


class Recorder(Hook):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails, hints: HookHints
    ) -> None:
        self.seen.append(hook_context.flag_key)


@pytest.fixture
def domain() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex}"
    api.set_provider(VoxrouteProvider(load_default_flag_set()), domain=name)
    yield name
    api.set_provider(InMemoryProvider({}), domain=name)


def _contexts() -> list[EvaluationContext]:
    return [
        EvaluationContext(
            f"s-{i}",
            {
                "tenant_id": ["acme", "globex", f"t{i}"][i % 3],
                "region": ["us", "eu", "ap"][i % 3],
                "features": {"s2s": i % 4 == 0},
                "attributes": {},
            },
        )
        for i in range(300)
    ]


def _same(a: FlagEvaluationDetails[str], b: FlagEvaluationDetails[str]) -> bool:
    fields = ("flag_key", "value", "variant", "reason", "error_code", "flag_metadata")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def test_direct_results_equal_the_sdk_results(domain: str) -> None:
    direct = RoutingFlagClient(domain)
    sdk = RoutingFlagClient(domain, direct_when_unobserved=False)
    assert direct._unobserved_provider() is not None
    assert sdk._unobserved_provider() is None
    for context in _contexts():
        for flag in FLAGS:
            assert _same(
                direct.get_string_details(flag, "dflt", context),
                sdk.get_string_details(flag, "dflt", context),
            )


def test_an_api_hook_sees_every_evaluation(domain: str) -> None:
    recorder = Recorder()
    api.add_hooks([recorder])
    try:
        assert RoutingFlagClient(domain)._unobserved_provider() is None
        RoutingFlagClient(domain).get_string_details("stt-provider", "", _contexts()[0])
    finally:
        api.clear_hooks()
    assert recorder.seen == ["stt-provider"]


def test_a_client_hook_sees_every_evaluation(domain: str) -> None:
    recorder = Recorder()
    client = RoutingFlagClient(domain)
    client.client.add_hooks([recorder])
    client.get_string_details("vad-provider", "", _contexts()[0])
    assert recorder.seen == ["vad-provider"]


def test_a_global_context_reaches_the_rules(domain: str) -> None:
    api.set_evaluation_context(EvaluationContext(attributes={"tenant_id": "globex"}))
    try:
        details = RoutingFlagClient(domain).get_string_details(
            "stt-provider", "", EvaluationContext("s-1", {"region": "us"})
        )
    finally:
        api.set_evaluation_context(EvaluationContext())
    assert details.variant == "openai-transcribe"


def test_another_provider_replaces_voxroutes(domain: str) -> None:
    flag = InMemoryFlag("cartesia", {"cartesia": "cartesia/sonic-2"})
    api.set_provider(InMemoryProvider({"tts-provider": flag}), domain=domain)
    details = RoutingFlagClient(domain).get_string_details("tts-provider", "", _contexts()[0])
    assert details.value == "cartesia/sonic-2"
