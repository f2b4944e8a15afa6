"""A process's view of every API key, looked up once per request.

Keys come from two places: the settings (`StaticKey`s, for containers and CI)
and the Redis key store (made with `voxroute keys create`). The keyring holds
both as one map from token digest to principal, so a request costs one HMAC and
one dict lookup (a lookup by the keyed digest says nothing about any token's
bytes, so it needs no constant-time comparison). A background task polls the
store's version every `interval_s` (default 0.25 s) and reloads on a change, so
a key revoked anywhere is refused by every process within a second; a token
not in the map is looked up in the store once before it is refused, so a key
just made elsewhere works at once. Last use is recorded in memory and written
to the store every `touch_interval_s`.

With no key anywhere the keyring is `open` (development mode): every request
is served as `OPEN_PRINCIPAL`. The first key made turns that off everywhere,
for good: revoking the last key leaves a service that refuses every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ExperimentError
from ..eventlog.group_commit import UNAVAILABLE
from ..flag_store.sync import cancel_and_wait, stopping_or_cancelled
from .key_store import RedisKeyStore
from .keys import OPEN_PRINCIPAL, Principal, Role, token_digest

logger = logging.getLogger("voxroute.auth")

DEFAULT_INTERVAL_S = 0.25
DEFAULT_TOUCH_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class StaticKey:
    """A key from the settings: its token is known to the process, not stored."""

    name: str
    role: Role
    token: str
    tenant_id: str | None = None

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"StaticKey(name={self.name!r}, role={self.role.value!r})"


class Keyring:
    """Every key of a process by token digest (see the module docstring)."""

    def __init__(
        self,
        secret: bytes,
        static: Sequence[StaticKey] = (),
        store: RedisKeyStore | None = None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        touch_interval_s: float = DEFAULT_TOUCH_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._static = {
            token_digest(secret, k.token): Principal(k.name, k.role, k.tenant_id) for k in static
        }
        self._stored: dict[str, Principal] = {}
        self._by_digest = dict(self._static)
        self.store = store
        self.interval_s = interval_s
        self.touch_interval_s = touch_interval_s
        self._clock = clock
        self._used: dict[str, int] = {}
        self.version = -1
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def open(self) -> bool:
        """No key anywhere, ever: development mode, every request is served. Once
        the store has held a key (its version moved), revoking the last one does
        not reopen the service."""
        return not self._by_digest and self.version <= 0

    async def start(self) -> None:
        """Check the secret against the store, load its keys, follow it."""
        if self.store is None:
            return
        await self.store.check_secret()
        await self.refresh()
        self._task = asyncio.create_task(self._follow(), name="voxroute-keyring")

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._task)
        self._task = None
        await self._flush_used()

    async def authenticate(self, token: str | None) -> Principal | None:
        """The principal of `token`; None when it is missing or unknown. While
        the keyring is open every caller without a known key is `OPEN_PRINCIPAL`."""
        if not token:
            return OPEN_PRINCIPAL if self.open else None
        digest = token_digest(self._secret, token)
        principal = self._by_digest.get(digest)
        if principal is None and self.store is not None:
            # a key made elsewhere since the last refresh (it may be the first one)
            principal = await self._find(digest)
        if principal is None:
            return OPEN_PRINCIPAL if self.open else None
        self._used[principal.name] = int(self._clock() * 1000)
        return principal

    async def refresh(self) -> bool:
        """Reload the store's keys when its version moved; whether it did."""
        if self.store is None:
            return False
        version, stored = await self.store.load()
        if version == self.version:
            return False
        self._stored = {digest: key.principal for digest, key in stored.items()}
        self._by_digest = {**self._stored, **self._static}
        self.version = version
        return True

    def status(self) -> dict[str, Any]:
        """For /readyz: the mode and how many keys, never a token or digest."""
        return {
            "mode": "open" if self.open else "enforced",
            "keys": len(self._by_digest),
            "stored_keys": len(self._stored),
            "version": self.version,
        }

    async def _find(self, digest: str) -> Principal | None:
        assert self.store is not None  # noqa: S101 - checked by the caller
        key = await self.store.find(digest)
        if key is None:
            return None
        self._stored[digest] = self._by_digest[digest] = key.principal
        return key.principal

    async def _follow(self) -> None:
        last_touch = self._clock()
        while not stopping_or_cancelled(self._stopping):
            await asyncio.sleep(self.interval_s)
            try:
                if await self.store_version() != self.version:
                    await self.refresh()
                if self._clock() - last_touch >= self.touch_interval_s:
                    last_touch = self._clock()
                    await self._flush_used()
            except (ExperimentError, *UNAVAILABLE) as exc:  # keep the last known keys
                logger.warning("API keys: cannot follow the key store: %s", exc)

    async def store_version(self) -> int:
        assert self.store is not None  # noqa: S101 - only followed with a store
        return await self.store.version()

    async def _flush_used(self) -> None:
        used, self._used = self._used, {}
        if self.store is None or not used:
            return
        stored_names = {p.name for p in self._stored.values()}
        with contextlib.suppress(ExperimentError):
            await self.store.touch({n: ms for n, ms in used.items() if n in stored_names})
