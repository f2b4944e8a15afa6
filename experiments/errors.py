"""The one exception base of the domain core and its error codes.

Every error names the thing that is wrong; routing errors also carry the
routing context (session, tenant, region, flag) so that a log line or an HTTP
body is enough to reproduce the decision. `CodedError` is the machinery
(message, code, context, `to_dict`) that `ExperimentError` shares with
`analysis.errors.AnalysisError`; each package keeps its own code enum.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

C = TypeVar("C", bound=StrEnum)


class ErrorCode(StrEnum):
    """Why an operation of `experiments/` failed; `service/` maps each to an HTTP status."""

    INVALID_INPUT = "invalid_input"
    INVALID_FLAGS = "invalid_flags"
    INVALID_CATALOG = "invalid_catalog"
    FLAG_NOT_FOUND = "flag_not_found"
    SESSION_NOT_FOUND = "session_not_found"
    NO_ROUTE = "no_route"
    CONFLICT = "conflict"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    SPOOL_FULL = "spool_full"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    PRECONDITION_REQUIRED = "precondition_required"
    READ_ONLY = "read_only"
    RATE_LIMITED = "rate_limited"


class CodedError(Exception, Generic[C]):
    """An error with a machine-readable `code` (a `StrEnum`) and `context`.

    The shared machinery of the packages' own error bases (`ExperimentError`
    here, `analysis.errors.AnalysisError`): each subclasses it with its own
    code enum, and `service/` turns `to_dict()` into the HTTP error body.
    """

    code: C

    def __init__(
        self,
        message: str,
        *,
        code: C | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.context: dict[str, Any] = dict(context or {})

    def to_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "context": self.context}


class ExperimentError(CodedError[ErrorCode]):
    """Base of every error raised by `experiments/`.

    `context` holds machine-readable detail (the routing context, the file and
    path of a bad flag) that the HTTP layer returns as it is.
    """

    code = ErrorCode.INVALID_INPUT


class FlagValidationError(ExperimentError):
    """A flag set breaks a flagd rule or disagrees with the provider catalog.

    `source` is the file (or store key) the flags came from, `flag_key` the flag,
    `path` a JSON-pointer-like location inside the flag (`/targeting/if/1`).
    """

    code = ErrorCode.INVALID_FLAGS

    def __init__(
        self, problem: str, *, source: str = "", flag_key: str = "", path: str = ""
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"file {source}" if source else "",
                f"flag {flag_key!r}" if flag_key else "",
                f"at {path}" if path else "",
            )
            if part
        )
        super().__init__(
            f"{where}: {problem}" if where else problem,
            context={"source": source, "flag_key": flag_key, "path": path, "problem": problem},
        )
        self.source = source
        self.flag_key = flag_key
        self.path = path
        self.problem = problem


class CatalogError(ExperimentError):
    """The provider catalog is malformed or names something that does not exist."""

    code = ErrorCode.INVALID_CATALOG


class NoRouteError(ExperimentError):
    """No valid route can be built for a session; `context` is the routing context."""

    code = ErrorCode.NO_ROUTE


class SessionNotFoundError(ExperimentError):
    code = ErrorCode.SESSION_NOT_FOUND


class StorageUnavailableError(ExperimentError):
    """The event log or session store cannot be reached and nothing could be kept."""

    code = ErrorCode.STORAGE_UNAVAILABLE
