"""Who may manage flags: admin keys from the settings (`Authorization: Bearer <token>`).

- `VOXROUTE_ADMIN_TOKEN`: one admin token, named `admin` in the audit;
  `VOXROUTE_ADMIN_KEYS`: named admin tokens, `name:token,name:token`.
- `VOXROUTE_TENANT_KEYS`: tenant tokens (`name:token,...`); they may not manage flags (403).
- No admin token configured: flag management is disabled (403 saying how to enable it).
A missing or unknown token is a 401. Tokens are compared in constant time.
The security issue replaces this with real API keys; `require_admin` stays the hook.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from experiments.errors import ErrorCode, ExperimentError

from .api.deps import SettingsDep

ADMIN_NAME = "admin"


def parse_keys(raw: SecretStr | None) -> list[tuple[str, str]]:
    """`name:token,name:token` as (name, token) pairs; a malformed item is an error."""
    if raw is None:
        return []
    pairs = []
    for item in raw.get_secret_value().split(","):
        name, sep, token = item.strip().partition(":")
        if not sep or not name or not token:
            raise ValueError("API keys are `name:token` pairs separated by commas")
        pairs.append((name, token))
    return pairs


def _match(token: str, keys: list[tuple[str, str]]) -> str | None:
    found = None
    for name, key in keys:  # every key is compared, so timing says nothing
        if hmac.compare_digest(token.encode(), key.encode()):
            found = name
    return found


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def require_admin(request: Request, settings: SettingsDep) -> str:
    """The admin key's name, for the audit; raises 401/403 otherwise."""
    admins = parse_keys(settings.admin_keys)
    if settings.admin_token is not None:
        admins.append((ADMIN_NAME, settings.admin_token.get_secret_value()))
    if not admins:
        raise ExperimentError(
            "flag management is disabled: set VOXROUTE_ADMIN_TOKEN (or VOXROUTE_ADMIN_KEYS) "
            "to enable it, and send `Authorization: Bearer <token>`",
            code=ErrorCode.FORBIDDEN,
        )
    token = _bearer(request)
    if token is None:
        raise ExperimentError(
            "an admin token is required: `Authorization: Bearer <token>`",
            code=ErrorCode.UNAUTHORIZED,
        )
    name = _match(token, admins)
    if name is not None:
        return name
    tenant = _match(token, parse_keys(settings.tenant_keys))
    if tenant is not None:
        raise ExperimentError(
            f"the tenant key {tenant!r} cannot manage flags: an admin token is required",
            code=ErrorCode.FORBIDDEN,
            context={"key": tenant},
        )
    raise ExperimentError("unknown token: not an admin key", code=ErrorCode.UNAUTHORIZED)


AdminDep = Annotated[str, Depends(require_admin)]
