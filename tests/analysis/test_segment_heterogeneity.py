"""Cochran's Q across segment effects (e.g. regions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.errors import AnalysisError, StatError
from analysis.inference import cochran_q


def test_cochran_q_matches_a_hand_computation() -> None:
    # by hand: w = 1/se^2, pooled = sum(w e)/sum(w), Q = sum(w (e - pooled)^2), p = chi2.sf(Q, k-1)
    estimates, ses = np.array([0.10, 0.30, -0.05]), np.array([0.05, 0.08, 0.10])
    w = 1 / ses**2
    pooled = (w * estimates).sum() / w.sum()
    q = (w * (estimates - pooled) ** 2).sum()
    result = cochran_q(list(estimates), list(ses))
    assert result.q == pytest.approx(q)
    assert result.df == 2
    assert result.p_value == pytest.approx(stats.chi2.sf(q, 2))
    assert result.pooled_estimate == pytest.approx(pooled)
    assert result.pooled_std_error == pytest.approx(w.sum() ** -0.5)
    assert result.i_squared == pytest.approx(max(0.0, (q - 2) / q))


def test_homogeneous_segments_are_not_flagged_more_than_alpha() -> None:
    rng = np.random.default_rng(20240409)
    ses = np.array([0.05, 0.1, 0.2, 0.08])
    estimates = 0.2 + rng.normal(size=(2000, 4)) * ses
    rejections = [cochran_q(list(e), list(ses)).p_value < 0.05 for e in estimates]
    assert 0.04 <= np.mean(rejections) <= 0.06


def test_segments_without_an_estimate_are_skipped() -> None:
    result = cochran_q([0.1, math.nan, 0.3], [0.05, math.nan, 0.05])
    assert result.n_segments == 2
    assert result.df == 1


def test_one_segment_is_too_few_groups() -> None:
    assert cochran_q([0.1], [0.05]).error is StatError.TOO_FEW_GROUPS


def test_zero_standard_error_is_an_error() -> None:
    assert cochran_q([0.1, 0.2], [0.0, 0.05]).error is StatError.ZERO_VARIANCE


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(AnalysisError):
        cochran_q([0.1, 0.2], [0.05])
