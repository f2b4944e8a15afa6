"""Request and response bodies of the HTTP API (pydantic stays at this boundary)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from experiments.context import (
    IDENTIFIER_PATTERN,
    MAX_ATTRIBUTE_VALUE_LENGTH,
    MAX_ATTRIBUTES,
    MAX_FEATURES,
    MAX_ID_LENGTH,
    RouteContext,
)
from experiments.errors import ExperimentError
from experiments.json_numbers import MAX_EXACT_INT

from .body import KeyCountedBody

IDENTIFIER_DESCRIPTION = (
    f"1 to {MAX_ID_LENGTH} characters, no control characters, no whitespace at either end."
)
Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=IDENTIFIER_PATTERN,
        description=IDENTIFIER_DESCRIPTION,
    ),
]
# Documented, not validated here: `experiments` checks the id and names the rule broken.
SessionIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        json_schema_extra={"pattern": IDENTIFIER_PATTERN},
        description=f"The session's id: {IDENTIFIER_DESCRIPTION}",
        examples=["call-8812"],
    ),
]
AttributeText = Annotated[StrictStr, Field(max_length=MAX_ATTRIBUTE_VALUE_LENGTH)]
AttributeInt = Annotated[StrictInt, Field(ge=-MAX_EXACT_INT, le=MAX_EXACT_INT)]
AttributeValue = AttributeText | AttributeInt | StrictFloat | StrictBool


class SessionIn(KeyCountedBody):
    """A voice session that is starting."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "session_id": "call-8812",
                    "tenant_id": "acme",
                    "region": "eu",
                    "features": {"s2s": False},
                    "attributes": {"plan": "pro"},
                }
            ]
        },
    )

    session_id: Identifier = Field(description="The call's id; the targeting key of every flag.")
    tenant_id: Identifier | None = Field(
        default=None,
        description="The session's tenant: required with an admin key; with a tenant key, "
        "its own tenant (when omitted) and no other (403).",
    )
    region: Identifier = Field(description="One of the catalog's regions.")
    features: dict[Identifier, StrictBool] = Field(
        default_factory=dict,
        max_length=MAX_FEATURES,
        description="Feature switches, seen by flags as `features.<name>`.",
    )
    attributes: dict[Identifier, AttributeValue] = Field(
        default_factory=dict,
        max_length=MAX_ATTRIBUTES,
        description="Free attributes, seen by flags as `attributes.<name>`: strings (at most "
        f"{MAX_ATTRIBUTE_VALUE_LENGTH} characters), numbers, booleans. An integer beyond ±2**53 "
        "is taken as the floating-point number it denotes.",
    )

    def to_context(self, tenant_id: str | None) -> RouteContext:
        """The routing context, for `tenant_id` (the caller's, see `auth.acting_tenant`)."""
        if tenant_id is None:
            raise ExperimentError(
                "body.tenant_id: required (an admin key names the session's tenant)",
                context={"field": "body.tenant_id", "problem": "required"},
            )
        return RouteContext(self.session_id, tenant_id, self.region, self.features, self.attributes)

    def json_key_count(self) -> int:
        return len(self.model_fields_set) + len(self.features) + len(self.attributes)


class ProviderOut(BaseModel):
    id: str = Field(description="Catalog id, e.g. `deepgram/nova-3`.")
    kind: str
    vendor: str
    model: str
    config: dict[str, Any] = Field(description="Catalog config with the tenant's overrides.")


class RouteOut(BaseModel):
    mode: str = Field(description="`pipeline` (STT + TTS) or `s2s`.")
    stt: ProviderOut | None
    tts: ProviderOut | None
    s2s: ProviderOut | None
    vad: ProviderOut | None
    turn_detection: ProviderOut | None


class SplitOut(BaseModel):
    id: str = Field(description="Stable id of the fractional split that decided the variant.")
    weights: dict[str, int]
    bucket_unit: str | None = Field(description="What was bucketed: `targetingKey`, `tenant_id`.")
    bucket_key: str | None = Field(description="The exact string that was hashed.")


class AssignmentOut(BaseModel):
    flag_key: str
    variant: str | None
    value: str | None
    reason: str = Field(description="OpenFeature reason: STATIC, TARGETING_MATCH, SPLIT, ...")
    flag_version: str
    error_code: str | None = None
    split: SplitOut | None = None


class FallbackOut(BaseModel):
    part: str
    flag_key: str
    reason: str
    detail: str
    requested: str | None
    used: str


class SessionOut(BaseModel):
    """A session and its pinned route: the same document for its whole life."""

    session_id: str
    tenant_id: str
    region: str
    created_at: str
    features: dict[str, bool]
    attributes: dict[str, Any]
    route: RouteOut
    assignments: list[AssignmentOut]
    fallbacks: list[FallbackOut]


class ErrorDetail(BaseModel):
    code: str
    message: str = Field(description="Names the field or thing that is wrong and why.")
    context: dict[str, Any]


class ErrorOut(BaseModel):
    error: ErrorDetail


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or an unknown one."},
    403: {"model": ErrorOut, "description": "The key's role may not do this."},
    429: {"model": ErrorOut, "description": "Over the key's rate limit; retry after Retry-After."},
}
"""The answers of authentication, documented on every operation that needs a key."""


NOT_JSON: dict[int | str, dict[str, Any]] = {
    415: {
        "model": ErrorOut,
        "description": "The body is not declared as JSON: send Content-Type: application/json "
        "(or application/<type>+json; charset, if given, utf-8).",
    }
}
