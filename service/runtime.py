"""Everything a running voxroute process holds: the Redis connection (or the
embedded server), the flags and catalog, the OpenFeature provider, the router
and the session service. Built once at start-up, closed at shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from openfeature import api as openfeature_api

from experiments.config import RoutingConfig, load_routing_config
from experiments.eventlog.keys import KeyLayout
from experiments.eventlog.redis_log import RedisSessionLog
from experiments.flag_client import RoutingFlagClient
from experiments.flags import VoxrouteProvider
from experiments.router import Router
from experiments.sessions import SessionService

from .embedded_redis import EmbeddedRedis
from .settings import Settings

logger = logging.getLogger("voxroute")


@dataclass
class Runtime:
    settings: Settings
    config: RoutingConfig
    provider: VoxrouteProvider
    router: Router
    sessions: SessionService
    redis_url: str
    embedded: EmbeddedRedis | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        config = load_routing_config(settings.flags_path, settings.catalog_path)
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
        log = RedisSessionLog.from_url(
            url,
            keys=KeyLayout(prefix=settings.key_prefix, shards=settings.shards),
            session_ttl_s=settings.session_ttl_s,
            stream_maxlen=settings.stream_maxlen,
            socket_timeout_s=settings.redis_timeout_s,
        )
        logger.info(
            "voxroute ready: flags %s (%d flags), catalog %s, redis %s",
            settings.flags_path,
            len(config.flag_set.flags),
            settings.catalog_path,
            "embedded " + url if embedded else url,
        )
        sessions = SessionService(router, log)
        return cls(settings, config, provider, router, sessions, url, embedded)

    async def stop(self) -> None:
        await self.sessions.log.aclose()
        if self.embedded is not None:
            self.embedded.stop()

    async def readiness(self) -> dict[str, Any]:
        redis_ok = await self.sessions.log.ping()
        return {
            "ready": redis_ok,
            "redis": {
                "ok": redis_ok,
                "embedded": self.embedded is not None or self.settings.redis_embedded,
            },
            "flags": {
                "source": str(self.settings.flags_path),
                "count": len(self.config.flag_set.flags),
                "warnings": [f"{w.flag_key}: {w.problem}" for w in self.config.warnings],
            },
            "catalog": {
                "source": self.config.catalog.source,
                "providers": len(self.config.catalog.providers),
            },
        }
