"""`voxroute analyze FLAG` and `voxroute power`."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from enum import Enum
from typing import Any

from analysis.spec import AnalysisSpec, options
from experiments.metrics import load_metric_registry
from experiments.routing_config import load_routing_config

from .analysis_jobs import run_analysis
from .embedded_redis import attach_or_start
from .flag_management import current_flag_set
from .settings import Settings


def add_analysis_parsers(sub: Any) -> None:
    """Register `analyze` and `power` on the `voxroute` command's subparsers."""
    analyze = sub.add_parser(
        "analyze",
        help="compare the cohorts of an experiment (reads VOXROUTE_REDIS_URL, else the "
        "embedded Redis's data, and the flags where the server reads them: the Redis flag "
        "store in redis mode, else VOXROUTE_FLAGS_PATH)",
    )
    analyze.add_argument("flag_key")
    analyze.add_argument("--format", choices=("table", "json"), default="table")
    add_spec_arguments(analyze)
    analyze.set_defaults(run=_analyze)

    power = sub.add_parser("power", help="sessions needed per cohort for a minimum effect")
    base = power.add_mutually_exclusive_group(required=True)
    base.add_argument("--mean", type=float, help="baseline mean (with --variance)")
    base.add_argument("--rate", type=float, help="baseline proportion, e.g. 0.82")
    power.add_argument("--variance", type=float, help="baseline variance (with --mean)")
    power.add_argument("--mde", type=float, required=True, help="minimum detectable effect")
    power.add_argument("--relative", action="store_true", help="the MDE is a share of baseline")
    power.add_argument("--alpha", type=float, default=0.05)
    power.add_argument("--power", type=float, default=0.8)
    power.set_defaults(run=_power)


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option of `analysis.spec.AnalysisSpec` (`--segment`, `--cuped`, ...)."""
    for option in options():
        flag, kind = f"--{option.name}", option.kind
        if kind is bool:
            parser.add_argument(flag, action="store_true", help=option.help or None)
        elif issubclass(kind, Enum):
            parser.add_argument(
                flag,
                type=kind,
                choices=list(kind),
                default=option.default,
                help=option.help or None,
            )
        else:
            parser.add_argument(flag, type=kind, default=option.default, help=option.help or None)


def _analyze(args: argparse.Namespace) -> int:
    settings = Settings()
    config = load_routing_config(settings.flags_path, settings.catalog_path)
    spec = AnalysisSpec.from_options(vars(args))
    with ExitStack() as stack:
        url = settings.redis_url or attach_or_start(settings.data_dir / "redis", stack)
        flag_set = current_flag_set(settings, url, config)
        result = run_analysis(
            url, flag_set, args.flag_key, load_metric_registry(settings.metrics_path),
            spec, key_prefix=settings.key_prefix, shards=settings.shards,
        )  # fmt: skip
    sys.stdout.write(result.to_json(indent=True) if args.format == "json" else result.to_text())
    sys.stdout.write("\n")
    return 0


def _power(args: argparse.Namespace) -> int:
    from analysis import sample_size_mean, sample_size_proportion

    common = {"relative": args.relative, "alpha": args.alpha, "power": args.power}
    if args.mean is not None:
        if args.variance is None:
            sys.stderr.write("voxroute power: --mean needs --variance\n")
            return 2
        plans = [
            sample_size_mean(args.mean, args.variance, args.mde, sequential=s, **common)
            for s in (False, True)
        ]
    else:
        plans = [
            sample_size_proportion(args.rate, args.mde, sequential=s, **common)
            for s in (False, True)
        ]
    sys.stdout.write(f"{'design':12s} {'per cohort':>12s} {'total':>12s}\n")
    for label, plan in zip(("fixed", "sequential"), plans, strict=True):
        sys.stdout.write(f"{label:12s} {plan.per_cohort:12,d} {plan.total:12,d}\n")
    return 0
