"""Differential test: CompiledFlagSet against flagd-core 1.0.0 on generated contexts.

Every flag of the shipped flag set and of the flagd test bed (when present) is
evaluated by both on the same EvaluationContext, with its natural type and with
a drawn one (to exercise type mismatches). Value, variant, reason and error code
must be identical; the one allowed difference is SPLIT where flagd-core says
TARGETING_MATCH, and only when our resolution carries the split.

flagd-core raises for errors: an OpenFeatureError maps to its code, any other
exception to GENERAL (as the OpenFeature SDK does).

Exclusions: flags reading `$flagd.timestamp` (flagd-core reads the clock, so the
two sides could see different seconds); none of the flags do today. No flag is
excluded for disagreeing with the test bed: flagd-core 1.0.0 passes every
current (non-@fractional-v1) scenario of test bed 3.9.0.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flags_testbed import SHIPPED_FLAGS, TESTBED, TESTBED_FLAGS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode, OpenFeatureError
from openfeature.flag_evaluation import FlagType, Reason

from experiments.flags import CompiledFlagSet, load_flag_set

KINDS = ("boolean", "string", "integer", "float", "object")
DEFAULTS: dict[str, Any] = {
    "boolean": False,
    "string": "caller-default",
    "integer": -1,
    "float": -1.5,
    "object": {"caller": "default"},
}
Outcome = tuple[Any, ...]

TEXT = st.text(st.characters(codec="utf-8"), max_size=10)
WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.lists(st.sampled_from(["us", "eu", 1, None]), max_size=2),
    st.just({"nested": "object"}),
    TEXT,
)


def _pick(*values: Any) -> st.SearchStrategy[Any]:
    """Mostly the listed values (which the rules test for), sometimes anything."""
    return st.one_of(
        st.sampled_from(values), st.sampled_from(values), st.sampled_from(values), WEIRD
    )


HASH_EDGE_KEYS = ("ejOoVL", "bY9fO-", "SI7p-", "6LvT0", "ceQdGm")
TARGETING_KEYS = st.one_of(
    st.none(),
    st.uuids().map(str),
    st.sampled_from(("jon@company.com", "jane@company.com", "user1", "", *HASH_EDGE_KEYS)),
    st.sampled_from(("5c3d8535-f81a-4478-a6d3-afaa4d51199e", "some-targeting-key")),
    TEXT,
)
ATTRIBUTES = st.fixed_dictionaries(
    {},
    optional={
        "region": _pick("us", "eu", "ap", "other"),
        "tenant_id": st.one_of(_pick("acme", "globex", "initech"), TEXT),
        "features": st.fixed_dictionaries(
            {}, optional={"s2s": _pick(True, False, "true", 1, 0), "beta": st.booleans()}
        ),
        "attributes": st.fixed_dictionaries({}, optional={"plan": _pick("pro", "free")}),
        "email": _pick(
            "ballmer@macrosoft.com", "jobs@orange.com", "wozniak@orange.com", "user@example.com", ""
        ),
        "user": st.fixed_dictionaries(
            {"name": _pick("jack", "queen", "ten", "nine", "3", "seven")}
        ),
        "id": _pick("abcdef", "uvwxyz", "abcxyz", "lmnopq"),
        "version": _pick("2.0.0", "2.1.0", "1.9.0", "2.0.0-alpha", "3.0.1", "v1.0.0", "1", 1, 1.2),
        "tier": _pick("premium", "basic"),
        "color": _pick("red", "green", "blue", "yellow", ""),
        "num": _pick(123, "123", "abc"),
        "missing_key": TEXT,
        "targetingKey": TEXT,
    },
)


def _natural_kind(variants: dict[str, Any]) -> str:
    kinds = set()
    for value in variants.values():
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int):
            kinds.add("integer")
        elif isinstance(value, float):
            kinds.add("float")
        elif isinstance(value, str):
            kinds.add("string")
        else:
            kinds.add("object")
    return kinds.pop() if len(kinds) == 1 else "string"


class _Pair:
    """One flag file loaded by both implementations."""

    def __init__(self, path: Path, *, strict: bool) -> None:
        raw = json.loads(path.read_text(encoding="utf-8"))
        self.core = FlagdCore()
        self.core.set_flags(copy.deepcopy(raw))  # flagd-core mutates what it is given
        self.ours: CompiledFlagSet = load_flag_set(path, strict=strict)
        self.kinds = {
            key: _natural_kind(flag["variants"])
            for key, flag in raw["flags"].items()
            # excluded: time-dependent rules (see the module docstring)
            if "$flagd.timestamp" not in json.dumps(flag)
        }


def _reference(core: FlagdCore, key: str, kind: str, context: EvaluationContext) -> Outcome:
    try:
        details = getattr(core, f"resolve_{kind}_value")(key, DEFAULTS[kind], context)
    except OpenFeatureError as exc:
        return ("error", exc.error_code)
    except Exception:
        return ("error", ErrorCode.GENERAL)
    return ("ok", repr(details.value), details.variant, details.reason)


def _ours(flags: CompiledFlagSet, key: str, kind: str, context: EvaluationContext) -> Outcome:
    result = flags.resolve(
        key, context.targeting_key, context.attributes, flag_type=FlagType[kind.upper()]
    )
    assert (result.reason == Reason.SPLIT) == (result.split is not None), result
    if result.error_code is not None:
        assert result.reason == Reason.ERROR
        return ("error", result.error_code)
    value = DEFAULTS[kind] if result.variant is None else result.value
    if kind == "float" and isinstance(value, int):
        value = float(value)
    reason = Reason.TARGETING_MATCH if result.reason == Reason.SPLIT else result.reason
    return ("ok", repr(value), result.variant, reason)


def _compare(
    pair: _Pair, targeting_key: str | None, attributes: dict[str, Any], drawn: str
) -> None:
    context = EvaluationContext(targeting_key, attributes)
    for key, natural in pair.kinds.items():
        for kind in {natural, drawn}:
            expected = _reference(pair.core, key, kind, context)
            assert _ours(pair.ours, key, kind, context) == expected, (key, kind, context)


@pytest.fixture(scope="module", autouse=True)
def _quiet_flagd_core() -> Iterator[None]:
    """flagd-core logs an error for every shorthand split without a targeting key."""
    logger = logging.getLogger("openfeature.contrib")
    logger.disabled = True
    yield
    logger.disabled = False


STABLE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def shipped() -> _Pair:
    return _Pair(SHIPPED_FLAGS, strict=True)


@pytest.fixture(scope="module")
def testbed() -> _Pair:
    if not TESTBED.is_dir():
        pytest.skip(f"the flagd test bed is not checked out at {TESTBED}")
    return _Pair(TESTBED_FLAGS, strict=False)


@settings(STABLE, max_examples=2000)
@given(targeting_key=TARGETING_KEYS, attributes=ATTRIBUTES, drawn=st.sampled_from(KINDS))
def test_shipped_flags_resolve_like_flagd_core(
    shipped: _Pair, targeting_key: str | None, attributes: dict[str, Any], drawn: str
) -> None:
    _compare(shipped, targeting_key, attributes, drawn)


@settings(STABLE, max_examples=1200)
@given(targeting_key=TARGETING_KEYS, attributes=ATTRIBUTES, drawn=st.sampled_from(KINDS))
def test_testbed_flags_resolve_like_flagd_core(
    testbed: _Pair, targeting_key: str | None, attributes: dict[str, Any], drawn: str
) -> None:
    _compare(testbed, targeting_key, attributes, drawn)


def test_the_generated_contexts_reach_splits_and_errors(shipped: _Pair) -> None:
    """The strategies are not vacuous: the shipped flags give all their reasons."""
    reasons = {
        shipped.ours.resolve(key, tk, attrs).reason
        for key in shipped.kinds
        for tk, attrs in [
            ("s-1", {"region": "eu", "tenant_id": "acme"}),
            ("s-2", {"region": "us", "tenant_id": "globex", "features": {"s2s": True}}),
            (None, {"region": "ap"}),
        ]
    }
    assert reasons == {Reason.SPLIT, Reason.TARGETING_MATCH, Reason.DEFAULT, Reason.STATIC}
