from __future__ import annotations

import pytest

from experiments.context import RouteContext
from experiments.errors import ErrorCode, ExperimentError

REGIONS = frozenset({"us", "eu", "ap"})


def _context(**changes: object) -> RouteContext:
    fields: dict[str, object] = {
        "session_id": "call-1",
        "tenant_id": "acme",
        "region": "eu",
        "features": {"s2s": False},
        "attributes": {"plan": "pro"},
    }
    fields.update(changes)
    return RouteContext(**fields)  # type: ignore[arg-type]


def test_a_good_context_validates() -> None:
    assert _context().validate(REGIONS).session_id == "call-1"


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"session_id": ""}, "session_id", "must not be empty"),
        ({"session_id": "x" * 129}, "session_id", "at most 128"),
        ({"session_id": "call\n1"}, "session_id", "control characters"),
        ({"tenant_id": " acme"}, "tenant_id", "whitespace"),
        ({"tenant_id": 7}, "tenant_id", "must be a string"),
        ({"region": "mars"}, "region", "unknown region 'mars'"),
        ({"features": {"s2s": "yes"}}, "features.s2s", "must be a boolean"),
        ({"attributes": {"plan": ["a"]}}, "attributes.plan", "string, number or boolean"),
        ({"attributes": {"score": float("nan")}}, "attributes.score", "finite"),
        ({"attributes": {"seats": 2**53 + 1}}, "attributes.seats", "within ±2**53"),
    ],
)
def test_a_bad_field_is_named_with_its_problem(
    changes: dict[str, object], field: str, problem: str
) -> None:
    with pytest.raises(ExperimentError) as caught:
        _context(**changes).validate(REGIONS)
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert caught.value.context["field"] == field
    assert problem in caught.value.message


def test_flag_rules_see_tenant_region_features_and_attributes() -> None:
    assert _context().evaluation_attributes() == {
        "tenant_id": "acme",
        "region": "eu",
        "features": {"s2s": False},
        "attributes": {"plan": "pro"},
    }
