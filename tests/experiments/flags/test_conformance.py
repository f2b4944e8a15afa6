"""The flagd test bed's evaluator scenarios, run through the OpenFeature SDK with VoxrouteProvider.

Scenarios tagged @fractional-v1 use flagd's legacy bucketing and are skipped;
all others (including @fractional-v2 and @fractional-nested) must pass. Two
voxroute differences are accepted: reason SPLIT where a scenario says
TARGETING_MATCH, but only when the variant came from a `fractional` split (the
split id is in the metadata); and the `voxroute.*` metadata keys, which a
scenario expecting no metadata ignores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flags_testbed import SKIP_REASON, TESTBED, TESTBED_FLAGS, Scenario, Step, load_scenarios
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason
from openfeature.provider.no_op_provider import NoOpProvider

from experiments.flags import SPLIT_ID_KEY, VoxrouteProvider, load_flag_set

if not TESTBED.is_dir():
    pytest.skip(SKIP_REASON, allow_module_level=True)

DOMAIN = "voxroute-conformance"
LEGACY_TAG = "@fractional-v1"
SCENARIOS = load_scenarios()


def _typed(kind: str, raw: str) -> Any:
    if kind == "Boolean":
        assert raw in ("true", "false"), raw
        return raw == "true"
    if kind == "Integer":
        return int(raw)
    if kind == "Float":
        return float(raw)
    if kind == "Object":
        return json.loads(raw)
    assert kind == "String", kind
    return raw


@dataclass
class _Run:
    client: OpenFeatureClient
    kind: str = ""
    key: str = ""
    default: Any = None
    targeting_key: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    details: FlagEvaluationDetails[Any] | None = None

    @property
    def result(self) -> FlagEvaluationDetails[Any]:
        assert self.details is not None, "no step evaluated the flag"
        return self.details

    def given(self, step: Step, args: list[str]) -> None:
        pattern = step.pattern
        if pattern == "an evaluator":
            return
        if pattern.startswith("a ") and pattern.endswith(
            "-flag with key {} and a fallback value {}"
        ):
            self.kind = pattern[2 : pattern.index("-flag")]
            self.key, self.default = args[0], _typed(self.kind, args[1])
        elif pattern == "a context containing a key {}, with type {} and with value {}":
            self.attributes[args[0]] = _typed(args[1], args[2])
        elif pattern.startswith("a context containing a nested property with outer key {}"):
            self.attributes.setdefault(args[0], {})[args[1]] = args[2]
        elif pattern == "a context containing a targeting key with value {}":
            self.targeting_key = args[0]
        else:
            pytest.fail(f"unsupported step: {step.text}")

    def evaluate(self) -> None:
        context = EvaluationContext(self.targeting_key, self.attributes)
        method = getattr(self.client, f"get_{self.kind.lower()}_details")
        self.details = method(self.key, self.default, context)

    def then(self, step: Step, args: list[str]) -> None:
        pattern, result = step.pattern, self.result
        if pattern == "the resolved details value should be {}":
            assert result.value == _typed(self.kind, args[0]), result
            assert type(result.value) is type(_typed(self.kind, args[0]))
        elif pattern == "the reason should be {}":
            _check_reason(result, args[0])
        elif pattern == "the error-code should be {}":
            assert result.error_code is not None, result
            assert str(result.error_code) == args[0], result
        elif pattern == "the variant should be {}":
            assert result.variant == args[0], result
        elif pattern == "the resolved metadata should contain":
            _check_metadata(result, step)
        elif pattern == "the resolved metadata is empty":
            assert {
                k: v for k, v in result.flag_metadata.items() if not k.startswith("voxroute.")
            } == {}
        else:
            pytest.fail(f"unsupported step: {step.text}")


def _check_reason(result: FlagEvaluationDetails[Any], expected: str) -> None:
    split = SPLIT_ID_KEY in result.flag_metadata
    if expected == Reason.TARGETING_MATCH and split:
        assert result.reason == Reason.SPLIT, result
        return
    assert result.reason == expected, result
    assert not split, "a split id on a variant that no fractional chose"


def _check_metadata(result: FlagEvaluationDetails[Any], step: Step) -> None:
    header, *rows = step.table
    assert header == ("key", "metadata_type", "value"), header
    for key, kind, raw in rows:
        value = result.flag_metadata.get(key)
        assert value == _typed(kind, raw), (key, result.flag_metadata)
        assert type(value) is type(_typed(kind, raw)), key


@pytest.fixture(scope="module")
def client() -> Iterator[OpenFeatureClient]:
    provider = VoxrouteProvider(load_flag_set(TESTBED_FLAGS, strict=False))
    api.set_provider_and_wait(provider, domain=DOMAIN)
    yield api.get_client(DOMAIN)
    api.set_provider_and_wait(NoOpProvider(), domain=DOMAIN)


def test_the_test_bed_has_current_scenarios() -> None:
    current = [s for s in SCENARIOS if LEGACY_TAG not in s.tags]
    assert len(current) > 100
    assert any("@fractional-v2" in s.tags for s in current)
    assert any("@fractional-nested" in s.tags for s in current)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_scenario(scenario: Scenario, client: OpenFeatureClient) -> None:
    if LEGACY_TAG in scenario.tags:
        pytest.skip("legacy bucketing (@fractional-v1): voxroute implements the current one")
    run = _Run(client)
    evaluated = False
    for step in scenario.steps:
        args = step.strings()
        if step.pattern == "the flag was evaluated with details":
            run.evaluate()
            evaluated = True
        elif not evaluated:
            run.given(step, args)
        else:
            run.then(step, args)
    assert evaluated, "the scenario never evaluates its flag"
