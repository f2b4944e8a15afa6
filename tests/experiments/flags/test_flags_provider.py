"""VoxrouteProvider through the OpenFeature SDK: registration, details, errors, hot swap."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from itertools import count
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from openfeature.provider.no_op_provider import NoOpProvider

from experiments.flags import (
    FLAG_VERSION_KEY,
    SPLIT_ID_KEY,
    CompiledFlagSet,
    VoxrouteProvider,
    compile_flag_set,
    load_default_flag_set,
)

_domains = count()
EU_ACME = EvaluationContext("sess-1", {"region": "eu", "tenant_id": "acme"})


def _flags(default: str = "a", *, extra: dict[str, Any] | None = None) -> CompiledFlagSet:
    flags: dict[str, Any] = {
        "choice": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": default},
        "count": {"state": "ENABLED", "variants": {"three": 3}, "defaultVariant": "three"},
        "config": {"state": "ENABLED", "variants": {"cfg": {"k": 1}}, "defaultVariant": "cfg"},
    }
    return compile_flag_set({"flags": {**flags, **(extra or {})}})


@pytest.fixture
def domain() -> Iterator[str]:
    name = f"voxroute-provider-test-{next(_domains)}"
    yield name
    api.set_provider_and_wait(NoOpProvider(), domain=name)


def _client(provider: VoxrouteProvider, domain: str) -> OpenFeatureClient:
    api.set_provider_and_wait(provider, domain=domain)
    return api.get_client(domain)


def test_client_details_carry_variant_reason_and_split_metadata(domain: str) -> None:
    client = _client(VoxrouteProvider(load_default_flag_set()), domain)
    details = client.get_string_details("tts-provider", "fallback", EU_ACME)
    assert details.reason == Reason.SPLIT
    assert details.variant in ("elevenlabs-flash", "cartesia-sonic")
    assert details.value in ("elevenlabs/eleven_flash_v2_5", "cartesia/sonic-2")
    assert details.flag_metadata[SPLIT_ID_KEY].startswith("tts-provider/")
    assert details.flag_metadata["voxroute.bucket_key"] == "tts-provideracme"
    assert details.flag_metadata["control"] == "elevenlabs-flash"
    assert details.error_code is None


def test_set_provider_without_waiting_becomes_ready(domain: str) -> None:
    api.set_provider(VoxrouteProvider(_flags()), domain=domain)
    client = api.get_client(domain)
    deadline = time.monotonic() + 5
    while client.get_provider_status() is not ProviderStatus.READY:
        assert time.monotonic() < deadline, "the provider never became ready"
        time.sleep(0.01)
    assert client.get_string_value("choice", "x") == "A"


def test_missing_flag_gives_the_default_with_flag_not_found(domain: str) -> None:
    details = _client(VoxrouteProvider(_flags()), domain).get_string_details("nope", "fallback")
    assert (details.value, details.reason) == ("fallback", Reason.ERROR)
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND


def test_wrong_type_gives_the_default_with_type_mismatch(domain: str) -> None:
    details = _client(VoxrouteProvider(_flags()), domain).get_integer_details("choice", 7)
    assert (details.value, details.reason) == (7, Reason.ERROR)
    assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_an_integer_flag_resolves_as_float(domain: str) -> None:
    details = _client(VoxrouteProvider(_flags()), domain).get_float_details("count", 0.5)
    assert details.value == 3.0
    assert isinstance(details.value, float)


def test_object_flag_resolves(domain: str) -> None:
    client = _client(VoxrouteProvider(_flags()), domain)
    assert client.get_object_value("config", {}) == {"k": 1}


def test_disabled_flag_gives_the_default_with_reason_disabled(domain: str) -> None:
    extra = {"off": {"state": "DISABLED", "variants": {"on": True}, "defaultVariant": "on"}}
    details = _client(VoxrouteProvider(_flags(extra=extra)), domain).get_boolean_details(
        "off", False
    )
    assert (details.value, details.reason, details.variant) == (False, Reason.DISABLED, None)
    assert details.error_code is None


async def test_async_resolution_matches_sync(domain: str) -> None:
    client = _client(VoxrouteProvider(load_default_flag_set()), domain)
    details = await client.get_string_details_async("stt-provider", "fallback", EU_ACME)
    assert details == client.get_string_details("stt-provider", "fallback", EU_ACME)


def test_provider_metadata_names_voxroute() -> None:
    assert VoxrouteProvider(_flags()).get_metadata().name == "voxroute"


def test_update_swaps_the_compiled_flag_set(domain: str) -> None:
    provider = VoxrouteProvider(_flags("a"))
    client = _client(provider, domain)
    new = _flags("b")
    provider.update(new)
    assert provider.compiled is new
    assert client.get_string_value("choice", "x") == "B"


def test_update_returns_the_changed_keys() -> None:
    provider = VoxrouteProvider(_flags("a"))
    assert provider.update(_flags("b")) == ["choice"]


def test_update_emits_configuration_changed_with_the_changed_keys(domain: str) -> None:
    provider = VoxrouteProvider(_flags("a"))
    client = _client(provider, domain)
    events: list[EventDetails] = []
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
    provider.update(_flags("b", extra={"new": {"state": "DISABLED", "variants": {"x": 1}}}))
    assert [event.flags_changed for event in events] == [["choice", "new"]]


def test_update_without_changes_emits_nothing(domain: str) -> None:
    provider = VoxrouteProvider(_flags("a"))
    client = _client(provider, domain)
    events: list[EventDetails] = []
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
    assert provider.update(_flags("a")) == []
    assert events == []


def test_change_listeners_receive_the_new_set_and_keys() -> None:
    provider = VoxrouteProvider(_flags("a"))
    seen: list[tuple[CompiledFlagSet, Sequence[str]]] = []
    provider.add_change_listener(lambda flags, keys: seen.append((flags, keys)))
    new = _flags("b")
    provider.update(new)
    assert seen == [(new, ["choice"])]


def test_a_removed_listener_is_not_called() -> None:
    provider = VoxrouteProvider(_flags("a"))
    seen: list[Sequence[str]] = []

    def listener(_flags: CompiledFlagSet, keys: Sequence[str]) -> None:
        seen.append(keys)

    provider.add_change_listener(listener)
    provider.remove_change_listener(listener)
    provider.update(_flags("b"))
    assert seen == []


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    provider = VoxrouteProvider(_flags("a"))
    seen: list[Sequence[str]] = []

    def failing(_flags: CompiledFlagSet, _keys: Sequence[str]) -> None:
        raise RuntimeError("cache is down")

    provider.add_change_listener(failing)
    provider.add_change_listener(lambda _flags, keys: seen.append(keys))
    provider.update(_flags("b"))
    assert seen == [["choice"]]
    assert "cache is down" in caplog.text


def test_flag_version_is_in_the_client_metadata(domain: str) -> None:
    flags = _flags()
    details = _client(VoxrouteProvider(flags), domain).get_string_details("choice", "x")
    assert details.flag_metadata[FLAG_VERSION_KEY] == flags.flags["choice"].version
