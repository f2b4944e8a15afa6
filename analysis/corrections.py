"""Multiple testing across metrics and variants, and guardrail non-inferiority tests.

Holm-Bonferroni (family-wise error, the default) and Benjamini-Hochberg
(false discovery rate) adjusted p-values, as statsmodels' `multipletests`
methods `holm` and `fdr_bh`. Guardrail metrics stay out of the family: each
is tested one-sided against its non-inferiority margin instead.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from analysis.errors import AnalysisError, StatError, check_alpha
from analysis.inference import EffectEstimate, t_quantile, t_sf
from analysis.sequential import always_valid_p_value, half_width
from analysis.spec import CorrectionMethod

K = TypeVar("K", bound=Hashable)


class MetricDirection(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


def _family(p_values: Sequence[float]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    p = np.asarray(p_values, dtype=np.float64)
    finite = np.isfinite(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise AnalysisError("p-values must lie in [0, 1]", context={"p_values": list(p_values)})
    return p, finite


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm-Bonferroni adjusted p-values; NaN entries stay NaN and are not counted."""
    p, finite = _family(p_values)
    family = p[finite]
    order = np.argsort(family, kind="stable")
    m = family.size
    # step-down: max over j <= i of (m - j + 1) p_(j), capped at 1
    stepped = np.maximum.accumulate((m - np.arange(m)) * family[order])
    adjusted = np.empty_like(family)
    adjusted[order] = np.minimum(stepped, 1.0)
    out = np.full_like(p, math.nan)
    out[finite] = adjusted
    return tuple(float(v) for v in out)


def benjamini_hochberg(p_values: Sequence[float]) -> tuple[float, ...]:
    """Benjamini-Hochberg adjusted p-values; NaN entries stay NaN and are not counted."""
    p, finite = _family(p_values)
    family = p[finite]
    order = np.argsort(family, kind="stable")
    m = family.size
    # step-up: min over j >= i of m p_(j) / j, capped at 1
    scaled = family[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty_like(family)
    adjusted[order] = np.minimum(stepped, 1.0)
    out = np.full_like(p, math.nan)
    out[finite] = adjusted
    return tuple(float(v) for v in out)


def adjust_p_values(
    p_values: Mapping[K, float],
    *,
    method: CorrectionMethod = CorrectionMethod.HOLM,
    exclude: Collection[K] = (),
) -> dict[K, float]:
    """Adjusted p-values of the family: every key except the `exclude`d (guardrails)."""
    keys = [key for key in p_values if key not in exclude]
    adjust = holm if method is CorrectionMethod.HOLM else benjamini_hochberg
    return dict(zip(keys, adjust([p_values[key] for key in keys]), strict=True))


@dataclass(frozen=True, slots=True)
class NonInferiority:
    """One-sided test that the treatment is not worse than control by `margin` or more.

    `bound` is the one-sided (1 - alpha) confidence bound of the effect on the
    harmful side; `non_inferior` holds when it stays inside the margin.
    """

    margin: float
    direction: MetricDirection
    p_value: float
    bound: float
    non_inferior: bool
    error: StatError | None = None


def non_inferiority_test(
    effect: EffectEstimate,
    *,
    margin: float,
    direction: MetricDirection,
    alpha: float = 0.05,
) -> NonInferiority:
    """Test H0: the effect is harmful by at least `margin` (in the effect's units, >= 0).

    For `LOWER_IS_BETTER` (latency) harm is a positive effect; for
    `HIGHER_IS_BETTER` a negative one. A sequential effect uses one side of
    its two-sided always-valid sequence, which is valid and conservative.
    """
    check_alpha(alpha)
    if margin < 0 or not math.isfinite(margin):
        raise AnalysisError(
            "a non-inferiority margin must be finite and >= 0", context={"margin": margin}
        )
    sign = 1.0 if direction is MetricDirection.LOWER_IS_BETTER else -1.0
    if effect.error is not None:
        return NonInferiority(margin, direction, math.nan, math.nan, False, effect.error)
    # distance from the harmful null, positive when the estimate is on the safe side
    null, se = sign * margin, effect.std_error
    safe = sign * (null - effect.estimate)
    if effect.tuning_n is None:
        p = t_sf(safe / se, effect.df)
        width = t_quantile(1 - alpha, effect.df) * se
    else:
        kw = {"alpha": alpha, "tuning_n": effect.tuning_n}
        p = (
            always_valid_p_value(effect.estimate, se, effect.n, null=null, **kw)
            if safe > 0
            else 1.0
        )
        width = half_width(se, effect.n, **kw)
    bound = effect.estimate + sign * width
    return NonInferiority(margin, direction, p, bound, sign * (null - bound) > 0)
