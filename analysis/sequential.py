"""Always-valid inference: asymptotic confidence sequences.

Waudby-Smith, Ringland, Ramdas et al. (2023), "Time-uniform central limit
theory and asymptotic confidence sequences", arXiv:2103.06476v7: the two-sided
Gaussian-mixture boundary (eq. 9), its mixing parameter rho tuned to be
tightest at an expected sample size (eq. 161), as GrowthBook gbstats
implements it with `sequential_tuning_parameter`.

For a two-sample estimate with standard error `se` from `n` units in total,
the per-unit variance the paper calls sigma^2 is `se**2 * n` (gbstats'
convention), and `tuning_n` is an expected total sample size in the same units.
"""

from __future__ import annotations

import math

from analysis.errors import AnalysisError, check_alpha

DEFAULT_TUNING_N = 5000.0
"""GrowthBook's default `sequential_tuning_parameter`."""


def _check(n: float, tuning_n: float, alpha: float) -> None:
    check_alpha(alpha)
    if n <= 0 or tuning_n <= 0:
        raise AnalysisError(
            "the sample size and the tuning parameter of a confidence sequence must be positive",
            context={"n": n, "tuning_n": tuning_n},
        )


def mixture_rho(alpha: float, tuning_n: float) -> float:
    """Mixing parameter rho that makes the boundary tightest at `tuning_n` units (eq. 161)."""
    _check(1.0, tuning_n, alpha)
    log_alpha = math.log(alpha)
    return math.sqrt((-2.0 * log_alpha + math.log(-2.0 * log_alpha + 1.0)) / tuning_n)


def half_width(std_error: float, n: float, *, alpha: float, tuning_n: float) -> float:
    """Half-width of the two-sided (1 - alpha) asymptotic confidence sequence at `n` (eq. 9)."""
    _check(n, tuning_n, alpha)
    c = n * mixture_rho(alpha, tuning_n) ** 2
    # sigma * sqrt(2 (n rho^2 + 1) / (n^2 rho^2) * log(sqrt(n rho^2 + 1) / alpha)), sigma^2 = se^2 n
    return std_error * math.sqrt(2.0 * (c + 1.0) / c * math.log(math.sqrt(c + 1.0) / alpha))


def always_valid_p_value(
    estimate: float, std_error: float, n: float, *, alpha: float, tuning_n: float, null: float = 0.0
) -> float:
    """Smallest level at which the confidence sequence excludes `null`, capped at 1.

    It is the reciprocal of the mixture e-value (eq. 155), computed in log space
    so that tiny p-values keep their precision; `p <= alpha` exactly when the
    (1 - alpha) sequence of `half_width` excludes `null`.
    """
    _check(n, tuning_n, alpha)
    c = n * mixture_rho(alpha, tuning_n) ** 2
    z2 = ((estimate - null) / std_error) ** 2
    log_p = 0.5 * math.log(c + 1.0) - c * z2 / (2.0 * (c + 1.0))
    return math.exp(min(0.0, log_p))
