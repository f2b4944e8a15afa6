"""The keyring and the key store on a real Redis: lookups, development mode,
following the store, the secret check, and what is (not) stored."""

from __future__ import annotations

import pytest
import redis

from experiments.access import (
    Keyring,
    Principal,
    RateLimiter,
    RateLimits,
    RedisKeyStore,
    Role,
    StaticKey,
)
from experiments.access.keys import OPEN_PRINCIPAL
from experiments.errors import ExperimentError
from experiments.eventlog.connect import async_client

pytestmark = pytest.mark.redis
SECRET = b"a secret"


@pytest.fixture
async def store(redis_url: str, prefix: str) -> RedisKeyStore:
    return RedisKeyStore.from_url(redis_url, SECRET, prefix=prefix)


async def test_without_any_key_every_caller_is_the_development_principal(
    store: RedisKeyStore,
) -> None:
    keyring = Keyring(SECRET, (), store)
    await keyring.start()
    try:
        assert keyring.open
        assert await keyring.authenticate(None) is OPEN_PRINCIPAL
        assert await keyring.authenticate("vrk_whatever") is OPEN_PRINCIPAL
    finally:
        await keyring.stop()
        await store.aclose()


async def test_static_keys_are_found_by_token_and_others_refused() -> None:
    keyring = Keyring(SECRET, [StaticKey("acme", Role.TENANT, "t-acme", tenant_id="acme")])
    assert not keyring.open
    assert await keyring.authenticate("t-acme") == Principal("acme", Role.TENANT, "acme")
    assert await keyring.authenticate("t-acm") is None
    assert await keyring.authenticate(None) is None


def test_a_static_key_never_shows_its_token() -> None:
    key = StaticKey("alice", Role.ADMIN, "super-secret-token")
    assert "super-secret-token" not in repr(key)
    assert "super-secret-token" not in str(key)


async def test_a_stored_key_is_followed_and_its_revocation_seen(store: RedisKeyStore) -> None:
    keyring = Keyring(SECRET, (), store, interval_s=0.01)
    await keyring.start()
    try:
        token = await store.create("dash", Role.READER)
        assert await keyring.authenticate(token) == Principal("dash", Role.READER)
        await store.revoke("dash")
        await keyring.refresh()
        assert await keyring.authenticate(token) is None
        assert not keyring.open  # revoking the last key does not reopen
    finally:
        await keyring.stop()
        await store.aclose()


async def test_last_use_is_written_when_the_keyring_stops(store: RedisKeyStore) -> None:
    keyring = Keyring(SECRET, (), store, clock=lambda: 1_700_000_000.0)
    await keyring.start()
    token = await store.create("acme-rt", Role.TENANT, "acme")
    await keyring.authenticate(token)
    await keyring.stop()
    (listed,) = await store.list()
    await store.aclose()
    assert listed.last_used_ms == 1_700_000_000_000


async def test_the_store_keeps_digests_not_tokens(
    store: RedisKeyStore, redis_url: str, prefix: str
) -> None:
    token = await store.create("alice", Role.ADMIN)
    await store.aclose()
    with redis.Redis.from_url(redis_url) as conn:
        fields = conn.hgetall(f"{prefix}:{{keys}}:by_digest")
    assert list(fields) == [store.digest(token).encode()]
    assert all(token.encode() not in value for value in fields.values())


async def test_a_keyring_with_another_secret_refuses_to_start(
    store: RedisKeyStore, redis_url: str, prefix: str
) -> None:
    await store.create("alice", Role.ADMIN)
    await store.aclose()
    other = RedisKeyStore.from_url(redis_url, b"another", prefix=prefix)
    try:
        with pytest.raises(ExperimentError, match="VOXROUTE_KEY_SECRET differs"):
            await Keyring(b"another", (), other).start()
    finally:
        await other.aclose()


@pytest.mark.parametrize(
    ("role", "tenant"), [(Role.TENANT, None), (Role.ADMIN, "acme"), (Role.READER, "acme")]
)
def test_only_a_tenant_key_has_a_tenant(role: Role, tenant: str | None) -> None:
    with pytest.raises(ValueError, match="tenant"):
        Principal("k", role, tenant)


async def test_a_rate_limit_lets_requests_through_while_redis_is_away() -> None:
    client = async_client("redis://127.0.0.1:9/0", socket_timeout_s=0.2, connect_timeout_s=0.2)
    limiter = RateLimiter(client, "vrtest", RateLimits(tenant=1.0))
    try:
        assert await limiter.retry_after(Principal("acme", Role.TENANT, "acme")) is None
    finally:
        await client.aclose()
