"""Who calls: every request's API key (`Authorization: Bearer <token>`), its role,
its tenant, and its rate limit. docs/security.md has the rules.

- No key at all, anywhere: development mode, every caller is served (the keyring
  is `open`).
- Otherwise a missing or unknown token is a 401, a role that may not do the
  operation a 403, a key over its rate limit a 429 with `Retry-After`.
- A tenant key acts for its own tenant only: `acting_tenant` forces it, and the
  services are told the caller's tenant so that other tenants' sessions are
  "not found" (404), never revealed.
Tokens never appear in a message, a log line or a response.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from experiments.access import Principal, Role
from experiments.errors import ErrorCode, ExperimentError
from experiments.telemetry import AUTH_FAILURES, RATE_LIMITED


async def authenticate(request: Request) -> Principal:
    """The caller of `request`, rate-limited; 401 or 429 otherwise."""
    runtime = request.app.state.runtime
    token = bearer_token(request)
    principal: Principal | None = await runtime.keyring.authenticate(token)
    if principal is None:
        reason = "missing" if token is None else "unknown"
        AUTH_FAILURES.labels(reason).inc()
        raise ExperimentError(
            "an API key is required: `Authorization: Bearer <token>`"
            if token is None
            else "unknown API key (revoked, or never made)",
            code=ErrorCode.UNAUTHORIZED,
        )
    limiter = runtime.rate_limiter
    if limiter is not None:
        wait_s = await limiter.retry_after(principal)
        if wait_s is not None:
            RATE_LIMITED.labels(principal.role.value).inc()
            raise ExperimentError(
                f"key {principal.name!r}: over its rate limit; retry in {wait_s} s",
                code=ErrorCode.RATE_LIMITED,
                context={"key": principal.name, "retry_after_s": wait_s},
            )
    return principal


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, if any."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def require_role(principal: Principal, *roles: Role) -> Principal:
    """`principal` when its role is one of `roles`; a 403 naming both otherwise."""
    if principal.role not in roles:
        AUTH_FAILURES.labels("forbidden").inc()
        allowed = " or ".join(role.value for role in roles)
        raise ExperimentError(
            f"key {principal.name!r} ({principal.role.value}) may not do this: "
            f"it needs an {allowed} key",
            code=ErrorCode.FORBIDDEN,
            context={"key": principal.name, "role": principal.role.value},
        )
    return principal


def acting_tenant(principal: Principal, given: str | None) -> str | None:
    """The tenant a request acts for: a tenant key's own (a 403 when the body names
    another), else the one the body names (None when it names none)."""
    if principal.role is not Role.TENANT:
        return given
    if given is not None and given != principal.tenant_id:
        AUTH_FAILURES.labels("other_tenant").inc()
        raise ExperimentError(
            f"key {principal.name!r} acts for tenant {principal.tenant_id!r}, not for {given!r}",
            code=ErrorCode.FORBIDDEN,
            context={"field": "tenant_id", "key": principal.name},
        )
    return principal.tenant_id


def owner_of(principal: Principal) -> str | None:
    """The only tenant whose sessions the caller may see (None: every tenant's)."""
    return principal.tenant_id if principal.role is Role.TENANT else None


async def session_caller(request: Request) -> Principal:
    """Sessions and outcomes: admin and tenant keys."""
    return require_role(await authenticate(request), Role.ADMIN, Role.TENANT)


async def reader_caller(request: Request) -> Principal:
    """Experiments, results and flag reads: admin and reader keys."""
    return require_role(await authenticate(request), Role.ADMIN, Role.READER)


async def require_admin(request: Request) -> str:
    """Flag changes: admin keys only; the key's name, for the audit."""
    return require_role(await authenticate(request), Role.ADMIN).name


SessionCallerDep = Annotated[Principal, Depends(session_caller)]
ReaderDep = Annotated[Principal, Depends(reader_caller)]
AdminDep = Annotated[str, Depends(require_admin)]
CallerDep = Annotated[Principal, Depends(authenticate)]
