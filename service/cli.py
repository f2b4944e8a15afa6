"""The `voxroute` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from experiments.errors import ErrorCode, ExperimentError
from experiments.metrics import load_metric_registry
from experiments.routing_config import load_routing_config

from .analysis_cli import add_analysis_parsers
from .flags_cli import add_flags_parser
from .keys_cli import add_keys_parser
from .observability.log_format import LOG_FORMATS, configure_logging, logging_config
from .observability.prometheus import MULTIPROC_ENV, prepare_multiprocess_dir
from .settings import Settings

logger = logging.getLogger("voxroute")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        code: int = args.run(args)
    except ExperimentError as exc:
        print(f"voxroute: {exc.message}", file=sys.stderr)
        return 2
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxroute", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("VOXROUTE_LOG_LEVEL", "info"))
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get("VOXROUTE_LOG_FORMAT", "text"),
        help="text (default) or json: one JSON object per line",
    )
    sub = parser.add_subparsers(required=True, metavar="command")

    serve = sub.add_parser("serve", help="run the HTTP API under uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--require-auth",
        action="store_true",
        default=None,
        help="refuse to start without an API key (VOXROUTE_REQUIRE_AUTH)",
    )
    serve.set_defaults(run=_serve)

    check = sub.add_parser("check", help="validate the flag set and the catalog")
    _config_args(check)
    check.set_defaults(run=_check)

    route = sub.add_parser("route", help="show the route a session would get (writes nothing)")
    _config_args(route)
    route.add_argument("--session-id", required=True)
    route.add_argument("--tenant-id", required=True)
    route.add_argument("--region", required=True)
    route.add_argument("--feature", action="append", default=[], metavar="NAME=true|false")
    route.set_defaults(run=_route)
    add_flags_parser(sub)
    add_keys_parser(sub)
    add_analysis_parsers(sub)
    return parser


def _config_args(parser: argparse.ArgumentParser) -> None:
    settings = Settings()
    parser.add_argument("--flags", type=Path, default=settings.flags_path)
    parser.add_argument("--catalog", type=Path, default=settings.catalog_path)


def _serve(args: argparse.Namespace) -> int:
    from .embedded_redis import EmbeddedRedis

    if args.require_auth:
        os.environ["VOXROUTE_REQUIRE_AUTH"] = "true"  # the workers read their settings anew
    settings = Settings()
    load_routing_config(settings.flags_path, settings.catalog_path)  # fail fast on a bad file
    load_metric_registry(settings.metrics_path)
    if settings.redis_url is not None:
        _check_auth(settings, settings.redis_url)
        return _run_uvicorn(args, settings.data_dir)
    with EmbeddedRedis(settings.data_dir / "redis") as embedded:
        os.environ["VOXROUTE_REDIS_URL"] = embedded.url
        os.environ["VOXROUTE_REDIS_EMBEDDED"] = "true"
        logger.info("embedded Redis at %s (set VOXROUTE_REDIS_URL to use yours)", embedded.url)
        _check_auth(settings, embedded.url)
        return _run_uvicorn(args, settings.data_dir)


def _check_auth(settings: Settings, url: str) -> None:
    """With --require-auth, refuse to start (before any worker) when no key exists."""
    if not settings.require_auth:
        return
    from .api_keys import NO_KEY, has_keys

    if not has_keys(settings, url):
        raise ExperimentError(NO_KEY, code=ErrorCode.UNAUTHORIZED)


def _run_uvicorn(args: argparse.Namespace, data_dir: Path) -> int:
    """uvicorn with voxroute's HTTP protocol (the read deadline and the header and
    connection bounds of `service.http_protocol`) and log format; under several
    workers, the shared folder of their metric files."""
    import uvicorn

    from .http_protocol import UVICORN_HTTP

    if args.workers > 1:  # the workers' metric files, before any worker imports prometheus-client
        os.environ[MULTIPROC_ENV] = str(prepare_multiprocess_dir(data_dir))
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level.lower(),
        http=UVICORN_HTTP,
        log_config=logging_config(args.log_level, args.log_format),
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_routing_config(args.flags, args.catalog)
    for warning in config.warnings:
        print(f"warning: flag {warning.flag_key!r}: {warning.problem}")
    print(
        f"ok: {len(config.flag_set.flags)} flags in {args.flags}, "
        f"{len(config.catalog.providers)} providers in {args.catalog}"
    )
    return 0


def _route(args: argparse.Namespace) -> int:
    from openfeature import api as openfeature_api

    from experiments.context import RouteContext
    from experiments.flags import VoxrouteProvider
    from experiments.flags.client import RoutingFlagClient
    from experiments.router import Router
    from experiments.sessions import session_document

    config = load_routing_config(args.flags, args.catalog)
    openfeature_api.set_provider(VoxrouteProvider(config.flag_set), domain="voxroute-cli")
    router = Router(RoutingFlagClient("voxroute-cli"), config.catalog)
    features = dict(_feature(item) for item in args.feature)
    context = RouteContext(args.session_id, args.tenant_id, args.region, features)
    context.validate(config.catalog.region_set)
    document = session_document(context, router.select_route(context), 0)
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _feature(item: str) -> tuple[str, bool]:
    name, _, value = item.partition("=")
    if value not in {"true", "false"}:
        raise ExperimentError(f"--feature {item!r}: expected NAME=true or NAME=false")
    return name, value == "true"
