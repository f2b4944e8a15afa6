"""Everything a running voxroute process holds: the Redis connection (or the
embedded server), the flags and catalog, the OpenFeature provider, the router
and the session and outcome services, whose Redis logs are wrapped by the local
spool (writes kept on disk while Redis is away, replayed by a background task).
Built once at start-up, closed at shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from openfeature import api as openfeature_api

from experiments.access import Keyring, RateLimiter, RedisKeyStore
from experiments.errors import ErrorCode, ExperimentError
from experiments.eventlog.keys import KeyLayout
from experiments.eventlog.outcome_log import RedisOutcomeLog
from experiments.eventlog.session_log import RedisSessionLog
from experiments.flags import VoxrouteProvider
from experiments.flags.client import RoutingFlagClient
from experiments.metrics import load_metric_registry
from experiments.outcomes import OutcomeService
from experiments.router import Router
from experiments.routing_config import RoutingConfig, load_routing_config
from experiments.sessions import SessionService
from experiments.spool.disk_spool import DiskSpool
from experiments.spool.replay import SpooledLogs

from .api_keys import NO_KEY, build_keyring, open_key_store, rate_limits
from .embedded_redis import EmbeddedRedis
from .flag_management import FlagManagement
from .settings import Settings

logger = logging.getLogger("voxroute")


@dataclass
class Runtime:
    settings: Settings
    config: RoutingConfig
    provider: VoxrouteProvider
    router: Router
    sessions: SessionService
    outcomes: OutcomeService
    logs: SpooledLogs
    redis_url: str
    keyring: Keyring
    key_store: RedisKeyStore
    rate_limiter: RateLimiter | None = None
    embedded: EmbeddedRedis | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    flags: FlagManagement | None = None
    flag_client: RoutingFlagClient | None = None

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        config = load_routing_config(settings.flags_path, settings.catalog_path)
        registry = load_metric_registry(settings.metrics_path)
        for warning in config.warnings:
            logger.warning("flags: %s: %s", warning.flag_key, warning.problem)
        embedded = None
        url = settings.redis_url
        if url is None:
            embedded = EmbeddedRedis(settings.data_dir / "redis").start()
            url = embedded.url
        provider = VoxrouteProvider(config.flag_set)
        openfeature_api.set_provider(provider, domain=settings.openfeature_domain)
        flag_client = RoutingFlagClient(
            settings.openfeature_domain,
            direct_when_unobserved=settings.openfeature_direct_when_unobserved,
        )
        router = Router(flag_client, config.catalog)
        provider.add_change_listener(router.invalidate)
        keys = KeyLayout(prefix=settings.key_prefix, shards=settings.shards)
        log = RedisSessionLog.from_url(
            url,
            keys=keys,
            session_ttl_s=settings.session_ttl_s,
            stream_maxlen=settings.stream_maxlen,
            stream_minid_age_s=settings.stream_minid_age_s,
            socket_timeout_s=settings.redis_timeout_s,
        )
        outcome_log = RedisOutcomeLog.from_url(
            url,
            keys=keys,
            stream_maxlen=settings.stream_maxlen,
            stream_minid_age_s=settings.stream_minid_age_s,
            socket_timeout_s=settings.redis_timeout_s,
        )
        logger.info(
            "voxroute ready: flags %s (%d flags), catalog %s, redis %s",
            settings.flags_path,
            len(config.flag_set.flags),
            settings.catalog_path,
            "embedded " + url if embedded else url,
        )
        key_store, keyring = await _start_keyring(settings, url)
        logs = await SpooledLogs.open(_open_spool(settings), log, outcome_log)
        sessions = SessionService(router, logs.sessions)
        outcomes = OutcomeService(logs.outcomes, registry)
        limits = rate_limits(settings)
        limiter = RateLimiter(key_store.client, settings.key_prefix, limits) if limits.any else None
        runtime = cls(
            settings, config, provider, router, sessions, outcomes, logs, url, keyring,
            key_store, limiter, embedded,
        )  # fmt: skip
        runtime.flag_client = flag_client
        runtime.flags = await FlagManagement.start(settings, url, provider, config)
        return runtime

    async def stop(self) -> None:
        if self.flags is not None:
            await self.flags.stop()
        await self.keyring.stop()
        await self.key_store.aclose()
        await self.logs.aclose()  # the replayer, the Redis logs, then the spool
        if self.embedded is not None:
            self.embedded.stop()

    async def readiness(self) -> dict[str, Any]:
        redis_ok = await self.sessions.log.ping()
        spool = self.logs.report()
        auth = self.keyring.status()
        if self.keyring.open:
            auth["warning"] = DEVELOPMENT_MODE
        return {
            "ready": redis_ok or not spool["full"],  # the spool takes writes while Redis is away
            "auth": auth,
            "redis": {
                "ok": redis_ok,
                "embedded": self.embedded is not None or self.settings.redis_embedded,
            },
            "spool": spool,
            "flags": {
                "source": str(self.settings.flags_path),
                "count": len(self.config.flag_set.flags),
                "warnings": [f"{w.flag_key}: {w.problem}" for w in self.config.warnings],
            },
            "flag_store": None if self.flags is None else self.flags.status(),
            "catalog": {
                "source": self.config.catalog.source,
                "providers": len(self.config.catalog.providers),
            },
            "metrics": {
                "source": self.outcomes.registry.source,
                "count": len(self.outcomes.registry),
            },
        }


DEVELOPMENT_MODE = (
    "development mode: no API key is configured, so every endpoint is open to anyone; "
    "create one with `voxroute keys create` (docs/security.md)"
)


async def _start_keyring(settings: Settings, url: str) -> tuple[RedisKeyStore, Keyring]:
    """The key store and the keyring following it; refuses to start without a key
    when `require_auth` is set, and warns once in development mode."""
    store = open_key_store(settings, url)
    keyring = build_keyring(settings, store)
    try:
        await keyring.start()
    except BaseException:
        await store.aclose()
        raise
    if keyring.open:
        if settings.require_auth:
            await keyring.stop()
            await store.aclose()
            raise ExperimentError(NO_KEY, code=ErrorCode.UNAUTHORIZED)
        logger.warning("%s", DEVELOPMENT_MODE)
    return store, keyring


def _open_spool(settings: Settings) -> DiskSpool:
    """This process's spool: the first free `w<n>` folder under the spool folder."""
    return DiskSpool.open_slot(
        settings.spool_dir or settings.data_dir / "spool",
        max_bytes=settings.spool_max_bytes,
        max_records=settings.spool_max_records,
        fsync_interval_s=settings.spool_fsync_interval_s,
    )
