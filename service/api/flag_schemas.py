"""Request and response bodies of /v1/flags (pydantic stays at this boundary)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from experiments.flags.patch import FlagPatch
from experiments.json_numbers import MAX_EXACT_INT

Weight = Annotated[int, Field(ge=0, le=MAX_EXACT_INT)]

Reason = Field(
    default="",
    max_length=1000,
    description="Why; required when a changed flag has a running split (a `fractional`).",
)


class FlagPatchIn(BaseModel):
    """The parts of a flag a PATCH may change; absent parts stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"weights": {"deepgram-nova-3": 80, "assemblyai-universal": 20}, "reason": "ramp"},
                {"state": "DISABLED", "reason": "cartesia incident"},
            ]
        },
    )

    state: Literal["ENABLED", "DISABLED"] | None = None
    default_variant: str | None = Field(default=None, alias="defaultVariant", min_length=1)
    weights: dict[str, Weight] | None = Field(
        default=None,
        description="New weight per variant of one split; variants not named keep theirs, a "
        "flag variant not in the split is added to it.",
    )
    split: str | None = Field(
        default=None, description="The split's id or path, when the flag has several."
    )
    reason: str = Reason

    def to_patch(self) -> FlagPatch:
        return FlagPatch(self.state, self.default_variant, self.weights, self.split)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: int = Field(
        ge=1, le=MAX_EXACT_INT, description="The flag version to restore (see history)."
    )
    reason: str = Reason


class PushIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flag_set: dict[str, Any] = Field(
        description="A whole flagd flag set (`flags`, `$evaluators`, `metadata`); flags "
        "absent from it are removed."
    )
    reason: str = Reason


class SplitOut(BaseModel):
    id: str = Field(description="Stable split id (survives weight changes).")
    path: str = Field(description="JSON pointer of the `fractional` inside the flag.")
    bucket_unit: str
    weights: dict[str, int]
    computed: bool = Field(description="Some weight or variant is a rule, not a literal.")


class FlagOut(BaseModel):
    """A flag as stored; `version` is also the ETag. PUT takes this document back."""

    key: str
    version: int = Field(description="The flag's version (from 1; 0 in file mode).")
    set_version: int = Field(description="The flag set's version.")
    definition: dict[str, Any] = Field(description="The flagd flag definition.")
    splits: list[SplitOut]


class FlagSummaryOut(BaseModel):
    key: str
    version: int
    state: str | None
    default_variant: str | None = Field(alias="defaultVariant")
    variants: dict[str, Any] | None
    splits: list[SplitOut]


class FlagListOut(BaseModel):
    set_version: int
    store: str = Field(description="`redis <prefix>:{flags}` or `file <path>`.")
    flags: list[FlagSummaryOut]


class DiffOpOut(BaseModel):
    op: Literal["add", "remove", "replace"]
    path: str
    old: Any = None
    new: Any = None


class FlagChangeOut(BaseModel):
    flag_key: str
    old_version: int
    new_version: int
    diff: list[DiffOpOut]
    old_weights: dict[str, dict[str, int]]
    weights: dict[str, dict[str, int]]
    warnings: list[str]


class ChangeOut(BaseModel):
    """What a write did, or (dry run) would do."""

    action: str
    dry_run: bool
    published: bool = Field(description="False for a dry run and for a change of nothing.")
    set_version: int = Field(description="The flag-set version in the store afterwards.")
    base_set_version: int
    changes: list[FlagChangeOut]
    set_parts_diff: list[DiffOpOut]
    valid: bool = Field(description="Whether the whole resulting flag set passed validation.")
    error: dict[str, Any] | None = Field(description="The validation problem (dry run).")
    warnings: list[str] = Field(description="Safety rails: weight changes, disabled flags, ...")
    reason_required: list[str] = Field(description="Changed flags with a running split.")


class AuditEntryOut(BaseModel):
    id: str = Field(description="The audit stream id.")
    flag_key: str
    action: str
    author: str = Field(description="The name of the API key that made the change.")
    reason: str
    ts_ms: int
    change_id: str
    set_version: int
    old_version: int
    new_version: int
    diff: list[DiffOpOut]
    old_weights: dict[str, dict[str, int]]
    weights: dict[str, dict[str, int]]
    warnings: list[str]
    document: dict[str, Any] | None = None


class HistoryOut(BaseModel):
    flag_key: str
    entries: list[AuditEntryOut] = Field(description="Newest first.")
