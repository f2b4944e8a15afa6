"""The routing context of one session and the rules its fields obey."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ErrorCode, ExperimentError
from .json_numbers import is_exact_int

MAX_ID_LENGTH = 128
MAX_FEATURES = 64
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_VALUE_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The rules of `check_identifier` as one regular expression, for the API schemas.
IDENTIFIER_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"

AttributeValue = str | int | float | bool


def check_identifier(field_name: str, value: object) -> str:
    """Return `value` when it is a usable id: a non-empty string of at most 128
    characters without control characters or surrounding whitespace."""
    if not isinstance(value, str):
        raise _invalid(field_name, f"must be a string, got {type(value).__name__}")
    if not value:
        raise _invalid(field_name, "must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise _invalid(field_name, f"must be at most {MAX_ID_LENGTH} characters, got {len(value)}")
    if _CONTROL.search(value):
        raise _invalid(field_name, "must not contain control characters")
    if value != value.strip():
        raise _invalid(field_name, "must not start or end with whitespace")
    return value


def _invalid(field_name: str, problem: str) -> ExperimentError:
    return ExperimentError(
        f"{field_name}: {problem}",
        code=ErrorCode.INVALID_INPUT,
        context={"field": field_name, "problem": problem},
    )


@dataclass(frozen=True, slots=True)
class RouteContext:
    """Who is calling: the session, its tenant and region, feature switches and
    free attributes. The targeting key of every flag evaluation is the session id;
    the flag rules see `tenant_id`, `region`, `features.*` and `attributes.*`."""

    session_id: str
    tenant_id: str
    region: str
    features: Mapping[str, bool] = field(default_factory=dict)
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)

    def validate(self, regions: frozenset[str] | None = None) -> RouteContext:
        """Check every field; raise `ExperimentError` naming the first bad one."""
        check_identifier("session_id", self.session_id)
        check_identifier("tenant_id", self.tenant_id)
        check_identifier("region", self.region)
        if regions is not None and self.region not in regions:
            raise _invalid("region", f"unknown region {self.region!r}; known: {sorted(regions)}")
        _check_features(self.features)
        _check_attributes(self.attributes)
        return self

    def evaluation_attributes(self) -> dict[str, Any]:
        """The attributes a flag rule sees (without the targeting key)."""
        return {
            "tenant_id": self.tenant_id,
            "region": self.region,
            "features": dict(self.features),
            "attributes": dict(self.attributes),
        }

    def as_log_context(self) -> dict[str, str]:
        return {"session_id": self.session_id, "tenant_id": self.tenant_id, "region": self.region}


def _check_features(features: Mapping[str, Any]) -> None:
    if len(features) > MAX_FEATURES:
        raise _invalid("features", f"at most {MAX_FEATURES} entries, got {len(features)}")
    for key, value in features.items():
        check_identifier("features key", key)
        if not isinstance(value, bool):
            raise _invalid(f"features.{key}", f"must be a boolean, got {type(value).__name__}")


def _check_attributes(attributes: Mapping[str, Any]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise _invalid("attributes", f"at most {MAX_ATTRIBUTES} entries, got {len(attributes)}")
    for key, value in attributes.items():
        check_identifier("attributes key", key)
        if isinstance(value, float) and not math.isfinite(value):
            raise _invalid(f"attributes.{key}", "must be a finite number")
        if isinstance(value, int) and not is_exact_int(value):
            raise _invalid(f"attributes.{key}", "must be an integer within ±2**53")
        if not isinstance(value, str | int | float | bool):
            raise _invalid(
                f"attributes.{key}",
                f"must be a string, number or boolean, got {type(value).__name__}",
            )
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
            raise _invalid(f"attributes.{key}", f"at most {MAX_ATTRIBUTE_VALUE_LENGTH} characters")
