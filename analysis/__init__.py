"""Cohort analysis on sufficient statistics: effects, health, corrections, power.

Pure functions on frozen dataclasses; no HTTP here. `load_sessions` (streams
-> pandas) and `analyze` (pandas -> results) are imported on first use, so
that `import analysis` pulls in neither pandas nor Redis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from analysis.corrections import (
    CorrectionMethod,
    MetricDirection,
    NonInferiority,
    adjust_p_values,
    benjamini_hochberg,
    holm,
    non_inferiority_test,
)
from analysis.errors import AnalysisError, ErrorCode, StatError
from analysis.health import (
    BalanceResult,
    HealthWarning,
    SrmResult,
    WarningKind,
    balance_test,
    small_sample_warnings,
    srm_test,
)
from analysis.inference import (
    ArmSummary,
    Comparison,
    EffectEstimate,
    Heterogeneity,
    Method,
    cochran_q,
    compare,
    compare_clusters,
    compare_means,
    compare_proportions,
    compare_ratios,
    estimate_effect,
)
from analysis.power import (
    SampleSize,
    SessionsNeeded,
    sample_size_mean,
    sample_size_proportion,
    sessions_still_needed,
)
from analysis.quantiles import (
    QuantileComparison,
    QuantileEstimate,
    compare_quantiles,
    quantile_estimate,
    quantile_estimates,
)
from analysis.sequential import DEFAULT_TUNING_N
from analysis.statistics import ClusterStats, ProportionStats, RatioStats, SampleStats
from analysis.variance import CupedResult, CupedStats, cuped_adjust

if TYPE_CHECKING:
    from analysis.experiment import analyze
    from analysis.load import load_sessions

_LAZY = {"analyze": "analysis.experiment", "load_sessions": "analysis.load"}


def __getattr__(name: str) -> Any:
    """`analyze` and `load_sessions`, imported with pandas when first asked for."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


__all__ = [
    "DEFAULT_TUNING_N",
    "AnalysisError",
    "ArmSummary",
    "BalanceResult",
    "ClusterStats",
    "Comparison",
    "CorrectionMethod",
    "CupedResult",
    "CupedStats",
    "EffectEstimate",
    "ErrorCode",
    "HealthWarning",
    "Heterogeneity",
    "Method",
    "MetricDirection",
    "NonInferiority",
    "ProportionStats",
    "QuantileComparison",
    "QuantileEstimate",
    "RatioStats",
    "SampleSize",
    "SampleStats",
    "SessionsNeeded",
    "SrmResult",
    "StatError",
    "WarningKind",
    "adjust_p_values",
    "analyze",
    "balance_test",
    "benjamini_hochberg",
    "cochran_q",
    "compare",
    "compare_clusters",
    "compare_means",
    "compare_proportions",
    "compare_quantiles",
    "compare_ratios",
    "cuped_adjust",
    "estimate_effect",
    "holm",
    "load_sessions",
    "non_inferiority_test",
    "quantile_estimate",
    "quantile_estimates",
    "sample_size_mean",
    "sample_size_proportion",
    "sessions_still_needed",
    "small_sample_warnings",
    "srm_test",
]
