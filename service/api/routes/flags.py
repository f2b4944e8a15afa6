"""/v1/flags: read (admin and reader keys), change, push, roll back (admin keys) and
audit the live flag set."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from pydantic import WithJsonSchema

from experiments.errors import ErrorCode, ExperimentError
from experiments.flag_store import ChangeResult, FlagManager, flag_view, list_view

from ...auth import AdminDep, ReaderDep
from ...responses import json_response
from ..body import JsonBodyRoute
from ..flag_schemas import (
    ChangeOut,
    FlagListOut,
    FlagOut,
    FlagPatchIn,
    HistoryOut,
    PushIn,
    RollbackIn,
)
from ..schemas import AUTH_RESPONSES, NOT_JSON, ErrorOut

router = APIRouter(prefix="/v1/flags", tags=["flags"], route_class=JsonBodyRoute)

# A version is an integer of at most 18 digits (it fits a signed 64-bit integer),
# quoted as an entity tag or bare; `[0-9]`, not `\d`, which also matches other scripts' digits.
# The pattern goes into the OpenAPI document as it is, so it is also valid ECMA-262.
ETAG_PATTERN = r'^(W/)?("[0-9]{1,18}"|[0-9]{1,18})$'
ETAG_MAX_LENGTH = 22  # W/ + two quotes + 18 digits
_ETAG = re.compile(ETAG_PATTERN)
Responses = dict[int | str, dict[str, Any]]
_AUTH: Responses = {**AUTH_RESPONSES}
_WRITE: Responses = {
    **_AUTH,
    200: {"model": ChangeOut, "description": "Published, or (dry run / no change) not."},
    409: {"model": ErrorOut, "description": "Stale version, or flags read from a file."},
    422: {
        "model": ErrorOut,
        "description": "Invalid flag set (names flag, path and problem), a repeated key in "
        "the body, or a malformed If-Match.",
    },
    503: {"model": ErrorOut, "description": "The flag store is unavailable."},
}
_WRITE_BODY: Responses = {**_WRITE, **NOT_JSON}
_NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such flag."}}


async def get_flag_manager(request: Request) -> FlagManager:
    runtime = request.app.state.runtime
    if runtime.flags is None:
        raise ExperimentError("flag management is not running", code=ErrorCode.READ_ONLY)
    manager: FlagManager = runtime.flags.manager
    return manager


FlagsDep = Annotated[FlagManager, Depends(get_flag_manager)]
KeyPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=256,
        pattern=r"^[^/]+$",
        description="The flag key (a `/` cannot be addressed in a path).",
        examples=["stt-provider"],
    ),
]
DryRun = Annotated[bool, Query(description="Validate and diff only; publish nothing.")]
ReasonQuery = Annotated[str, Query(max_length=1000, description="Why (see PATCH).")]
# An absent header is None; WithJsonSchema keeps `null` out of the documented header.
IfMatch = Annotated[
    str | None,
    Header(
        description='The version this change is based on: the ETag (`"7"`); `7` and `W/"7"` '
        "are taken too. Anything else is a 422.",
        pattern=ETAG_PATTERN,
        max_length=ETAG_MAX_LENGTH,
    ),
    WithJsonSchema({"type": "string", "pattern": ETAG_PATTERN, "maxLength": ETAG_MAX_LENGTH}),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        description="`*`: create the flag, only if it does not exist (no other value is taken).",
        pattern=r"^\*$",
        max_length=1,
    ),
    WithJsonSchema({"type": "string", "pattern": r"^\*$", "maxLength": 1}),
]


def _version(if_match: str | None, *, required: bool) -> int | None:
    if if_match is None:
        if required:
            raise ExperimentError(
                "If-Match is required: send the ETag of the version you edited "
                '(If-Match: "7"), or If-None-Match: * to create the flag',
                code=ErrorCode.PRECONDITION_REQUIRED,
            )
        return None
    match = _ETAG.fullmatch(if_match)
    if match is None:  # FastAPI checked the pattern already; this keeps int() bounded anyway
        raise ExperimentError(f'If-Match {if_match[:40]!r}: expected a version such as "7"')
    return int(match.group(2).strip('"'))


def _changed(result: ChangeResult) -> Response:
    return json_response(result.to_dict())


@router.get(
    "",
    summary="Every flag, in short",
    response_model=None,
    responses={200: {"model": FlagListOut}, **_AUTH},
)
async def list_flags(flags: FlagsDep, caller: ReaderDep) -> Response:
    return json_response(list_view(await flags.snapshot(), flags.store.name))


@router.post(
    "",
    summary="Publish a whole flag set (validated as a whole)",
    response_model=None,
    responses=_WRITE_BODY,
)
async def push_flags(
    *,
    body: PushIn,
    flags: FlagsDep,
    admin: AdminDep,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> Response:
    """The flag set becomes the live set: flags absent from it are removed. `If-Match`
    (optional) is the flag-set version the push was based on."""
    version = _version(if_match, required=False)
    result = await flags.push(
        body.flag_set, if_match=version, author=admin, reason=body.reason, dry_run=dry_run
    )
    return _changed(result)


def _flag_link(method: str, path: str = "", **parameters: str) -> dict[str, Any]:
    """An OpenAPI link from GET /v1/flags/{key} to another operation on that flag."""
    return {
        "operationRef": f"#/paths/~1v1~1flags~1{{key}}{path.replace('/', '~1')}/{method}",
        "parameters": {"key": "$request.path.key", **parameters},
    }


_IF_MATCH_ETAG = {"header.if-match": "$response.header.ETag"}
_FLAG_LINKS = {
    "ReplaceFlag": {**_flag_link("put", **_IF_MATCH_ETAG), "requestBody": "$response.body"},
    "PatchFlag": _flag_link("patch", **_IF_MATCH_ETAG),
    "DeleteFlag": _flag_link("delete", **_IF_MATCH_ETAG),
    "FlagHistory": _flag_link("get", "/history"),
    "RollbackFlag": _flag_link("post", "/rollback", **_IF_MATCH_ETAG),
}


@router.get(
    "/{key}",
    summary="One flag's flagd definition; its version is the ETag",
    response_model=None,
    responses={
        200: {
            "model": FlagOut,
            "headers": {
                "ETag": {"description": 'The flag\'s version: `"7"`.', "schema": {"type": "string"}}
            },
            "links": _FLAG_LINKS,
        },
        **_NOT_FOUND,
        **_AUTH,
    },
)
async def get_flag(key: KeyPath, flags: FlagsDep, caller: ReaderDep) -> Response:
    stored = await flags.snapshot()
    flag = stored.flag(key)
    return json_response(flag_view(stored, flag), headers={"ETag": flag.etag()})


@router.put(
    "/{key}",
    summary="Replace (If-Match) or create (If-None-Match: *) a flag",
    response_model=None,
    responses={**_WRITE_BODY, 428: {"model": ErrorOut}},
)
async def put_flag(
    *,
    key: KeyPath,
    document: Annotated[dict[str, Any], Body(description="The flagd definition, or GET's body.")],
    flags: FlagsDep,
    admin: AdminDep,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
    reason: ReasonQuery = "",
    dry_run: DryRun = False,
) -> Response:
    """Takes GET's document back (its `definition`) or a bare flagd definition."""
    create = if_none_match == "*" and if_match is None
    version = None if create else _version(if_match, required=True)
    definition = document.get("definition", document) if "variants" not in document else document
    result = await flags.put(
        key, definition, if_match=version, author=admin, reason=reason, dry_run=dry_run
    )
    return _changed(result)


@router.patch(
    "/{key}",
    summary="Change state, default variant or split weights",
    response_model=None,
    responses={**_WRITE_BODY, **_NOT_FOUND},
)
async def patch_flag(
    *,
    key: KeyPath,
    body: FlagPatchIn,
    flags: FlagsDep,
    admin: AdminDep,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> Response:
    """Applied to the current version (or, with `If-Match`, only to that version).
    Changing a running split's weights warns that its analysis splits into periods."""
    version = _version(if_match, required=False)
    result = await flags.patch(
        key, body.to_patch(), if_match=version, author=admin, reason=body.reason, dry_run=dry_run
    )
    return _changed(result)


@router.delete(
    "/{key}",
    summary="Remove a flag (routing falls back to catalog defaults)",
    response_model=None,
    responses={**_WRITE, **_NOT_FOUND},
)
async def delete_flag(
    *,
    key: KeyPath,
    flags: FlagsDep,
    admin: AdminDep,
    if_match: IfMatch = None,
    reason: ReasonQuery = "",
    dry_run: DryRun = False,
) -> Response:
    version = _version(if_match, required=False)
    result = await flags.delete(key, if_match=version, author=admin, reason=reason, dry_run=dry_run)
    return _changed(result)


@router.get(
    "/{key}/history",
    summary="The flag's audit entries, newest first; kept when the flag is deleted",
    response_model=None,
    responses={
        200: {"model": HistoryOut},
        404: {"model": ErrorOut, "description": "No such flag, now or in the audit."},
        **_AUTH,
    },
)
async def flag_history(
    *,
    key: KeyPath,
    flags: FlagsDep,
    caller: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    documents: Annotated[bool, Query(description="Include each version's document.")] = False,
) -> Response:
    entries = await flags.history(key, limit=limit)
    body = [entry.to_dict(with_document=documents) for entry in entries]
    return json_response({"flag_key": key, "entries": body})


@router.post(
    "/{key}/rollback",
    summary="Restore an earlier version, as a new version (also of a deleted flag)",
    response_model=None,
    responses={
        **_WRITE_BODY,
        404: {"model": ErrorOut, "description": "The audit has no version `to_version` of it."},
    },
)
async def rollback_flag(
    *,
    key: KeyPath,
    body: RollbackIn,
    flags: FlagsDep,
    admin: AdminDep,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> Response:
    """The new version's document equals the one of `to_version` (read from the audit)."""
    version = _version(if_match, required=False)
    result = await flags.rollback(
        key, body.to_version, if_match=version, author=admin, reason=body.reason, dry_run=dry_run
    )
    return _changed(result)
