"""Cohort analysis on sufficient statistics: effects, health, corrections, power.

Pure functions on frozen dataclasses; no HTTP here. Every public name is
imported from its module on first use, so that `import analysis` (and the
import of one of its modules, such as the outcome reader that `load_sessions`
starts in a second process) pulls in neither scipy, pandas nor Redis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.corrections import (
        MetricDirection,
        NonInferiority,
        adjust_p_values,
        benjamini_hochberg,
        holm,
        non_inferiority_test,
    )
    from analysis.errors import AnalysisError, ErrorCode, StatError
    from analysis.experiment import analyze
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
    from analysis.load import load_sessions
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
    from analysis.spec import AnalysisSpec, CorrectionMethod, PeriodMode
    from analysis.statistics import ClusterStats, ProportionStats, RatioStats, SampleStats
    from analysis.variance import CupedResult, CupedStats, cuped_adjust

_LAZY = {
    "DEFAULT_TUNING_N": "analysis.sequential",
    "AnalysisError": "analysis.errors",
    "AnalysisSpec": "analysis.spec",
    "ArmSummary": "analysis.inference",
    "BalanceResult": "analysis.health",
    "ClusterStats": "analysis.statistics",
    "Comparison": "analysis.inference",
    "CorrectionMethod": "analysis.spec",
    "CupedResult": "analysis.variance",
    "CupedStats": "analysis.variance",
    "EffectEstimate": "analysis.inference",
    "ErrorCode": "analysis.errors",
    "HealthWarning": "analysis.health",
    "Heterogeneity": "analysis.inference",
    "Method": "analysis.inference",
    "MetricDirection": "analysis.corrections",
    "NonInferiority": "analysis.corrections",
    "PeriodMode": "analysis.spec",
    "ProportionStats": "analysis.statistics",
    "QuantileComparison": "analysis.quantiles",
    "QuantileEstimate": "analysis.quantiles",
    "RatioStats": "analysis.statistics",
    "SampleSize": "analysis.power",
    "SampleStats": "analysis.statistics",
    "SessionsNeeded": "analysis.power",
    "SrmResult": "analysis.health",
    "StatError": "analysis.errors",
    "WarningKind": "analysis.health",
    "adjust_p_values": "analysis.corrections",
    "analyze": "analysis.experiment",
    "balance_test": "analysis.health",
    "benjamini_hochberg": "analysis.corrections",
    "cochran_q": "analysis.inference",
    "compare": "analysis.inference",
    "compare_clusters": "analysis.inference",
    "compare_means": "analysis.inference",
    "compare_proportions": "analysis.inference",
    "compare_quantiles": "analysis.quantiles",
    "compare_ratios": "analysis.inference",
    "cuped_adjust": "analysis.variance",
    "estimate_effect": "analysis.inference",
    "holm": "analysis.corrections",
    "load_sessions": "analysis.load",
    "non_inferiority_test": "analysis.corrections",
    "quantile_estimate": "analysis.quantiles",
    "quantile_estimates": "analysis.quantiles",
    "sample_size_mean": "analysis.power",
    "sample_size_proportion": "analysis.power",
    "sessions_still_needed": "analysis.power",
    "small_sample_warnings": "analysis.health",
    "srm_test": "analysis.health",
}


def __getattr__(name: str) -> Any:
    """Each public name, imported from its module when first asked for."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


__all__ = [
    "DEFAULT_TUNING_N",
    "AnalysisError",
    "AnalysisSpec",
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
    "PeriodMode",
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
