"""A process's API keys from its settings: the server secret, the keys set in the
environment, the Redis key store, and the rate limiter.

The secret (HMAC key of the stored token digests) is `VOXROUTE_KEY_SECRET`; unset,
it is kept in `<data_dir>/key-secret` (mode 0600, made on first use), which suits a
single host where the server and the CLI share the data folder. Replicas on other
hosts need the same `VOXROUTE_KEY_SECRET`: a process whose secret differs from
the one the stored keys were made with refuses to start (see `RedisKeyStore.check_secret`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from experiments.access import Keyring, RateLimits, RedisKeyStore, Role, StaticKey

from .settings import Settings

NO_KEY = (
    "--require-auth: no API key is configured; create one with `voxroute keys create` "
    "or set VOXROUTE_ADMIN_TOKEN / VOXROUTE_TENANT_KEYS"
)
SECRET_FILE = "key-secret"  # noqa: S105 - a file name
ADMIN_NAME = "admin"


def key_secret(settings: Settings) -> bytes:
    """The server secret (see the module docstring)."""
    if settings.key_secret is not None:
        return settings.key_secret.get_secret_value().encode()
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return _read_secret(path)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    return path.read_text().strip().encode()


def parse_keys(raw: SecretStr | None, setting: str) -> list[tuple[str, str]]:
    """`name:token,name:token` as (name, token) pairs; a malformed item is an error
    that names the setting, never the token."""
    if raw is None:
        return []
    pairs = []
    for item in raw.get_secret_value().split(","):
        name, sep, token = item.strip().partition(":")
        if not sep or not name or not token:
            raise ValueError(f"{setting}: API keys are `name:token` pairs separated by commas")
        pairs.append((name, token))
    return pairs


def static_keys(settings: Settings) -> list[StaticKey]:
    """The keys set in the environment: admin (`ADMIN_TOKEN`, `ADMIN_KEYS`), tenant
    (`TENANT_KEYS`, named by their tenant) and reader (`READER_KEYS`)."""
    keys = [StaticKey(n, Role.ADMIN, t) for n, t in parse_keys(settings.admin_keys, "ADMIN_KEYS")]
    if settings.admin_token is not None:
        keys.append(StaticKey(ADMIN_NAME, Role.ADMIN, settings.admin_token.get_secret_value()))
    keys += [
        StaticKey(n, Role.TENANT, t, tenant_id=n)
        for n, t in parse_keys(settings.tenant_keys, "TENANT_KEYS")
    ]
    readers = parse_keys(settings.reader_keys, "READER_KEYS")
    keys += [StaticKey(n, Role.READER, t) for n, t in readers]
    return keys


def open_key_store(settings: Settings, redis_url: str) -> RedisKeyStore:
    return RedisKeyStore.from_url(
        redis_url,
        key_secret(settings),
        prefix=settings.key_prefix,
        socket_timeout_s=settings.redis_timeout_s,
    )


def build_keyring(settings: Settings, store: RedisKeyStore) -> Keyring:
    return Keyring(
        key_secret(settings), static_keys(settings), store, interval_s=settings.key_sync_interval_s
    )


def rate_limits(settings: Settings) -> RateLimits:
    return RateLimits(
        admin=settings.rate_limit_admin,
        tenant=settings.rate_limit_tenant,
        reader=settings.rate_limit_reader,
        burst_s=settings.rate_limit_burst_s,
    )


def has_keys(settings: Settings, redis_url: str) -> bool:
    """Whether any key exists, in the settings or the store (for `serve --require-auth`)."""
    if static_keys(settings):
        return True

    async def stored() -> bool:
        store = open_key_store(settings, redis_url)
        try:
            await store.check_secret()
            return bool((await store.load())[1])
        finally:
            await store.aclose()

    return asyncio.run(stored())
