"""Roles, the principal of a request, and how tokens are minted and hashed.

A token is `vrk_` followed by 32 random bytes (URL-safe base64): guessing one is
hopeless, so a keyed hash is enough to store it. voxroute keeps only
HMAC-SHA256(server secret, token): a copy of the Redis data without the secret
cannot be turned back into tokens, nor checked against guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "vrk_"  # noqa: S105 - a prefix, not a secret
TOKEN_BYTES = 32


class Role(StrEnum):
    """What a key may do (docs/security.md has the full table)."""

    ADMIN = "admin"  # everything
    TENANT = "tenant"  # its own tenant's sessions and outcomes, nothing else
    READER = "reader"  # experiments, results and flags, read-only


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: the key's name, its role and, for a tenant key,
    its tenant. `open` marks development mode (no key configured anywhere)."""

    name: str
    role: Role
    tenant_id: str | None = None
    open: bool = False

    def __post_init__(self) -> None:
        if (self.role is Role.TENANT) != (self.tenant_id is not None):
            raise ValueError("a tenant key has a tenant, and only a tenant key has one")


OPEN_PRINCIPAL = Principal("development", Role.ADMIN, open=True)
"""The caller of every request while no key is configured (development mode)."""


def mint_token() -> str:
    """A new random token (shown once, stored only as its digest)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(secret: bytes, token: str) -> str:
    """HMAC-SHA256 of `token` under the server secret, as hex: the only form kept."""
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()
