"""Holm / Benjamini-Hochberg against statsmodels; guardrail non-inferiority tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis.corrections import (
    CorrectionMethod,
    MetricDirection,
    adjust_p_values,
    benjamini_hochberg,
    holm,
    non_inferiority_test,
)
from analysis.errors import AnalysisError, StatError
from analysis.inference import EffectEstimate, compare_means, estimate_effect
from analysis.statistics import SampleStats

Adjust = Callable[[Sequence[float]], tuple[float, ...]]
P_VALUES = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 1.0, 0.0001]


@pytest.mark.parametrize(("adjust", "reference"), [(holm, "holm"), (benjamini_hochberg, "fdr_bh")])
def test_adjusted_p_values_match_statsmodels(adjust: Adjust, reference: str) -> None:
    # reference: statsmodels.stats.multitest.multipletests(method="holm" / "fdr_bh")
    expected = multipletests(P_VALUES, method=reference)[1]
    assert adjust(P_VALUES) == pytest.approx(tuple(expected))


@pytest.mark.parametrize(("adjust", "reference"), [(holm, "holm"), (benjamini_hochberg, "fdr_bh")])
def test_random_families_match_statsmodels(adjust: Adjust, reference: str) -> None:
    rng = np.random.default_rng(12)
    for size in (1, 2, 7, 30):
        p = rng.uniform(size=size) ** 3
        assert adjust(list(p)) == pytest.approx(tuple(multipletests(p, method=reference)[1]))


def test_nan_p_values_are_left_out_of_the_family() -> None:
    adjusted = holm([0.01, math.nan, 0.02])
    assert math.isnan(adjusted[1])
    assert adjusted[0] == pytest.approx(0.02)
    assert adjusted[2] == pytest.approx(0.02)


def test_p_values_outside_zero_one_raise() -> None:
    with pytest.raises(AnalysisError):
        holm([0.5, 1.5])


def test_guardrails_are_excluded_from_the_family() -> None:
    p = {"latency_p50": 0.01, "wer": 0.02, "error_rate": 0.04}
    adjusted = adjust_p_values(p, exclude={"error_rate"})
    assert adjusted == pytest.approx({"latency_p50": 0.02, "wer": 0.02})


def test_benjamini_hochberg_by_name() -> None:
    p = {"a": 0.01, "b": 0.02, "c": 0.04}
    adjusted = adjust_p_values(p, method=CorrectionMethod.BENJAMINI_HOCHBERG)
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.03, "c": 0.04})


def _effect(estimate: float, se: float = 1.0, df: float = 50.0) -> EffectEstimate:
    return estimate_effect(estimate, se * se, relative=False, n=52, df=df)


def test_non_inferiority_lower_is_better_matches_a_one_sided_t() -> None:
    # by hand: H0 effect >= margin; p = P(T_df <= (estimate - margin) / se)
    result = non_inferiority_test(
        _effect(1.0), margin=3.0, direction=MetricDirection.LOWER_IS_BETTER
    )
    assert result.p_value == pytest.approx(stats.t.cdf(-2.0, 50.0))
    assert result.bound == pytest.approx(1.0 + stats.t.ppf(0.95, 50.0))
    assert result.non_inferior


def test_non_inferiority_higher_is_better_looks_at_the_lower_side() -> None:
    # by hand: H0 effect <= -margin; p = P(T_df >= (estimate + margin) / se)
    result = non_inferiority_test(
        _effect(-2.5), margin=3.0, direction=MetricDirection.HIGHER_IS_BETTER
    )
    assert result.p_value == pytest.approx(stats.t.sf(0.5, 50.0))
    assert result.bound == pytest.approx(-2.5 - stats.t.ppf(0.95, 50.0))
    assert not result.non_inferior


def test_non_inferior_exactly_when_p_below_alpha() -> None:
    for estimate in np.linspace(-1.0, 5.0, 25):
        result = non_inferiority_test(
            _effect(float(estimate)), margin=3.0, direction=MetricDirection.LOWER_IS_BETTER
        )
        assert result.non_inferior == (result.p_value < 0.05)


def test_sequential_non_inferiority_is_consistent_with_its_bound() -> None:
    control = SampleStats.from_values(np.random.default_rng(4).normal(100, 20, size=2000))
    for shift in (-3.0, 0.0, 1.0, 4.0):
        treatment = SampleStats(control.n, control.sum + shift * control.n, control.sum_squares)
        effect = compare_means(control, treatment, sequential=True).absolute
        result = non_inferiority_test(effect, margin=2.0, direction=MetricDirection.LOWER_IS_BETTER)
        assert result.non_inferior == (result.p_value <= 0.05)


def test_non_inferiority_propagates_the_effect_error() -> None:
    failed = estimate_effect(math.nan, math.nan, relative=False, n=0, error=StatError.NO_DATA)
    result = non_inferiority_test(failed, margin=1.0, direction=MetricDirection.LOWER_IS_BETTER)
    assert result.error is StatError.NO_DATA
    assert not result.non_inferior


def test_negative_margin_raises() -> None:
    with pytest.raises(AnalysisError):
        non_inferiority_test(_effect(0.0), margin=-1.0, direction=MetricDirection.LOWER_IS_BETTER)
