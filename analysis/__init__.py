"""Cohort analysis on sufficient statistics: effects, health, corrections, power.

Pure functions on frozen dataclasses; no pandas, HTTP or Redis here (the
loading layer turns streams into the statistics objects).
"""

from __future__ import annotations

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
    "non_inferiority_test",
    "quantile_estimate",
    "quantile_estimates",
    "sample_size_mean",
    "sample_size_proportion",
    "sessions_still_needed",
    "small_sample_warnings",
    "srm_test",
]
