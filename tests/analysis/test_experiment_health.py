"""Health checks: sample-ratio mismatch, small cohorts, cohort mix."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from analysis.errors import AnalysisError, StatError
from analysis.health import (
    WarningKind,
    balance_test,
    small_sample_warnings,
    srm_test,
)


def test_srm_matches_scipy_chisquare() -> None:
    # reference: scipy.stats.chisquare with expected = total * w / sum(w)
    observed, weights = [5030, 4970, 1050], [45, 45, 10]
    total = sum(observed)
    ref = stats.chisquare(observed, [total * w / sum(weights) for w in weights])
    result = srm_test(observed, weights)
    assert result.chi2 == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue)
    assert result.df == 2
    assert result.expected == pytest.approx((4972.5, 4972.5, 1105.0))


def test_srm_flags_below_one_in_a_thousand() -> None:
    result = srm_test([10_500, 9_500], [1, 1])
    assert result.flagged
    assert result.p_value < 0.001
    assert result.warning is not None
    assert result.warning.kind is WarningKind.SAMPLE_RATIO_MISMATCH


def test_srm_does_not_flag_a_matching_split() -> None:
    result = srm_test([5_020, 4_980], [50, 50])
    assert not result.flagged
    assert result.warning is None


def test_srm_tiny_p_value_keeps_precision() -> None:
    result = srm_test([52_000, 48_000], [1, 1])  # chi2 = 160, p ~ 1e-36
    assert result.p_value == pytest.approx(stats.chi2.sf(160.0, 1), rel=1e-9)
    assert result.p_value > 0.0


def test_srm_sessions_in_a_zero_weight_cohort_are_a_mismatch() -> None:
    result = srm_test([100, 100, 3], [1, 1, 0])
    assert result.flagged
    assert result.p_value == 0.0
    assert math.isinf(result.chi2)


def test_srm_ignores_an_empty_zero_weight_cohort() -> None:
    assert srm_test([100, 100, 0], [1, 1, 0]).df == 1


def test_srm_without_sessions_is_no_data() -> None:
    result = srm_test([0, 0], [1, 1])
    assert result.error is StatError.NO_DATA
    assert not result.flagged


def test_srm_rejects_mismatched_lengths() -> None:
    with pytest.raises(AnalysisError):
        srm_test([1, 2, 3], [1, 1])


def test_small_sample_warnings_name_the_small_cohorts() -> None:
    warnings = small_sample_warnings({"deepgram": 1200, "assemblyai": 40}, minimum=100)
    assert [(w.kind, w.subject) for w in warnings] == [(WarningKind.SMALL_SAMPLE, "assemblyai")]


def test_balance_matches_scipy_chi2_contingency() -> None:
    # reference: scipy.stats.chi2_contingency(correction=False)
    counts = {
        "deepgram": {"eu": 400, "us": 550, "apac": 50},
        "assemblyai": {"eu": 460, "us": 500, "apac": 40},
    }
    ref = stats.chi2_contingency([[50, 400, 550], [40, 460, 500]], correction=False)
    result = balance_test(counts, attribute="region")
    assert result.chi2 == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue)
    assert result.df == ref.dof


def test_balance_warns_when_the_mix_differs() -> None:
    counts = {"a": {"eu": 700, "us": 300}, "b": {"eu": 300, "us": 700}}
    result = balance_test(counts, attribute="region")
    assert result.flagged
    assert result.warning is not None
    assert result.warning.kind is WarningKind.IMBALANCED_MIX


def test_balance_with_one_level_is_too_few_groups() -> None:
    result = balance_test({"a": {"eu": 10}, "b": {"eu": 12, "us": 0}}, attribute="region")
    assert result.error is StatError.TOO_FEW_GROUPS
    assert not result.flagged


def test_balance_without_sessions_is_no_data() -> None:
    assert balance_test({}, attribute="tenant").error is StatError.NO_DATA
