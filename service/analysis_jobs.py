"""Running a cohort analysis for the CLI and the HTTP API: the streams of the
configured Redis, the live (or file) flag definition, the metric registry."""

from __future__ import annotations

from analysis import analyze, load_sessions
from analysis.results import ExperimentResult
from analysis.spec import AnalysisSpec
from experiments.errors import ErrorCode, ExperimentError
from experiments.experiment_index import list_experiments
from experiments.flags import CompiledFlagSet
from experiments.metrics import MetricRegistry


def run_analysis(
    redis_url: str,
    flag_set: CompiledFlagSet,
    flag_key: str,
    registry: MetricRegistry,
    spec: AnalysisSpec,
    *,
    key_prefix: str,
    shards: int,
    pause_gc: bool = True,
) -> ExperimentResult:
    """Load the sessions of `flag_key` from the streams and analyse them as `spec` says.

    Raises `ExperimentError` (FLAG_NOT_FOUND) for a flag that is not an
    experiment (no `fractional` split in its targeting)."""
    experiments = {view.flag_key for view in list_experiments(flag_set)}
    if flag_key not in experiments:
        raise ExperimentError(
            f"flag {flag_key!r} is not an experiment (no fractional split); "
            f"experiments: {sorted(experiments)}",
            code=ErrorCode.FLAG_NOT_FOUND,
            context={"flag_key": flag_key},
        )
    definition = flag_set.flags[flag_key].definition
    frame = load_sessions(
        redis_url,
        flag_key,
        key_prefix=key_prefix,
        shards=shards,
        metrics=list(registry),
        flag=definition,
        pause_gc=pause_gc,
    )
    return analyze(frame, spec, flag=definition)
