"""The one settings object of the service (environment prefix `VOXROUTE_`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULTS_DIR = Path(__file__).resolve().parent.parent / "experiments" / "defaults"


class Settings(BaseSettings):
    """Every knob of a voxroute process; each field is `VOXROUTE_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="VOXROUTE_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="Redis to use (redis://, rediss://, unix://, or redis+cluster:// for a "
        "Redis Cluster). Unset: an embedded Redis server is started with its data under data_dir.",
    )
    redis_embedded: bool = Field(
        default=False,
        description="Set by `voxroute serve` for its workers when it started the embedded Redis.",
    )
    data_dir: Path = Field(default=Path(".voxroute"), description="Local state folder.")
    flags_path: Path = Field(default=DEFAULTS_DIR / "flags.json", description="flagd flag set.")
    catalog_path: Path = Field(default=DEFAULTS_DIR / "catalog.yaml", description="Catalog.")
    key_prefix: str = Field(default="vr", description="Prefix of every Redis key.")
    shards: int = Field(default=1, ge=1, le=1024, description="Stream shards (hash tags).")
    session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, description="Session lifetime.")
    stream_maxlen: int | None = Field(
        default=None, ge=1, description="Approximate MAXLEN trim of streams; unset keeps all."
    )
    stream_minid_age_s: int | None = Field(
        default=None,
        ge=1,
        description="Approximate MINID trim of streams: drop entries older than this many "
        "seconds; unset keeps all.",
    )
    metrics_path: Path | None = Field(
        default=None,
        description="Metric registry (YAML) merged over the shipped one; unset: the shipped one.",
    )
    redis_timeout_s: float = Field(default=2.0, gt=0, description="Redis socket timeout.")
    spool_dir: Path | None = Field(
        default=None,
        description="Spool of the writes Redis cannot take (unset: data_dir/spool); each "
        "process uses the first subfolder w0, w1, ... that no other process holds.",
    )
    spool_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=64 * 1024, description="Spool bound: segment file bytes."
    )
    spool_max_records: int = Field(
        default=1_000_000, ge=1, description="Spool bound: records not yet replayed."
    )
    spool_fsync_interval_s: float = Field(
        default=0.002, ge=0, le=1, description="Least time between spool fsyncs (group fsync)."
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Request body limit.")
    batch_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Body limit of POST /v1/outcomes (up to 1,000 events).",
    )
    request_read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A request whose headers and body are not all received this many seconds "
        "after the connection (or the request's first byte) is closed (408 while in headers). "
        "`voxroute serve` only.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Request target and header fields of one request; over it: 431 and the "
        "connection is closed. `voxroute serve` only.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections per process; one more is answered 503 with Retry-After "
        "and closed. `voxroute serve` only.",
    )
    openfeature_domain: str = Field(default="voxroute", description="OpenFeature domain.")
    openfeature_direct_when_unobserved: bool = Field(
        default=True,
        description="Ask voxroute's provider directly when no OpenFeature hook, global "
        "context or other provider could observe the SDK's work (same results, less CPU).",
    )
    flag_store: Literal["auto", "redis", "file"] = Field(
        default="auto",
        description="Where the live flags are: `redis` (managed through /v1/flags, seeded "
        "from flags_path), `file` (flags_path, reloaded when edited), `auto`: `redis` when "
        "an admin key is set, else `file`.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="An admin token (`Authorization: Bearer`), named `admin` in the audit.",
    )
    admin_keys: SecretStr | None = Field(
        default=None, description="Named admin tokens: `name:token,name:token`."
    )
    tenant_keys: SecretStr | None = Field(
        default=None,
        description="Tenant tokens, `tenant:token,...`: each acts for the tenant it is named by.",
    )
    reader_keys: SecretStr | None = Field(
        default=None, description="Reader tokens (`name:token,...`): experiments, results, flags."
    )
    key_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of the stored API-key digests; every replica and the CLI need "
        "the same. Unset: kept in data_dir/key-secret (made on first use).",
    )
    key_sync_interval_s: float = Field(
        default=0.25, gt=0, le=1, description="How often the key store is checked for changes."
    )
    require_auth: bool = Field(
        default=False,
        description="Refuse to start without an API key (`voxroute serve --require-auth`).",
    )
    rate_limit_admin: float | None = Field(
        default=None, gt=0, description="Requests per second per admin key; unset: no limit."
    )
    rate_limit_tenant: float | None = Field(
        default=None, gt=0, description="Requests per second per tenant key; unset: no limit."
    )
    rate_limit_reader: float | None = Field(
        default=None, gt=0, description="Requests per second per reader key; unset: no limit."
    )
    rate_limit_burst_s: float = Field(
        default=1.0, gt=0, description="Burst of a rate limit, in seconds of its rate."
    )
    flag_sync_interval_s: float = Field(
        default=5.0, gt=0, description="Re-read of the flag store besides pub/sub (redis mode)."
    )
    flag_file_poll_s: float = Field(
        default=0.25, gt=0, description="How often the flag file is checked (file mode)."
    )
    gc_tuned: bool = Field(
        default=True,
        description="Freeze start-up objects and raise the cyclic GC thresholds "
        "(50000, 50, 1000) once serving: fewer GC stalls on the request path.",
    )
    log_level: str = Field(default="INFO", description="Log level of the voxroute loggers.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text`: `time level logger: message` lines; `json`: one JSON object "
        "per line (time, level, logger, message, trace ids, routing context), uvicorn's too.",
    )
    metrics_require_key: bool = Field(
        default=False,
        description="Require an API key for GET /metrics (open by default, for scrapers "
        "inside the network).",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
