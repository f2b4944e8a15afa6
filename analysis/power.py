"""Sample size and power for two cohorts of equal size, two-sided tests.

* Means: the exact power of Welch's test with equal variances, i.e. the
  noncentral t of `statsmodels.stats.power.TTestIndPower`.
* Proportions: the normal power of the unpooled two-proportion z-test (the
  test `compare_proportions` runs), i.e. `NormalIndPower` with effect size
  delta / sqrt((p1 q1 + p2 q2) / 2).
* Sequential: the size at which the always-valid confidence sequence's
  half-width plus z_power standard errors reaches the MDE, the fixed-horizon
  criterion with the sequence in place of z_{1-alpha/2} (with power 0.5 it is
  "the half-width reaches the MDE"). Unless given, the sequence is tuned for
  the size it returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy import special

from analysis.errors import AnalysisError, StatError, check_alpha
from analysis.inference import Comparison
from analysis.sequential import half_width

_LIMIT = 10**12


@dataclass(frozen=True, slots=True)
class SampleSize:
    """Sessions per cohort (and in total) to detect `effect` with the given power."""

    per_cohort: int
    total: int
    effect: float
    alpha: float
    power: float
    sequential: bool


@dataclass(frozen=True, slots=True)
class SessionsNeeded:
    """More sessions, at the current allocation, for `power` at the observed effect.

    `scale` is the needed total over the current total; for a cluster-robust
    comparison it assumes new sessions bring new clusters in proportion.
    """

    additional: int | None
    total: int | None
    scale: float
    power: float
    error: StatError | None = None


def _smallest(predicate: Callable[[int], bool], low: int = 2) -> int:
    """Smallest integer >= low satisfying a predicate monotone in n."""
    high = low
    while not predicate(high):
        low, high = high + 1, high * 2
        if high > _LIMIT:
            raise AnalysisError("the effect is too small to be detected by any sample size")
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if predicate(mid) else (mid + 1, high)
    return low


def _sequential_ok(
    effect: float, var_sum: float, alpha: float, z_power: float, tuning_n: float | None
) -> Callable[[int], bool]:
    def ok(n: int) -> bool:
        se = math.sqrt(var_sum / n)
        tuning = 2.0 * n if tuning_n is None else tuning_n
        return half_width(se, 2 * n, alpha=alpha, tuning_n=tuning) + z_power * se <= effect

    return ok


def _check(alpha: float, power: float, mde: float) -> None:
    check_alpha(alpha)
    check_alpha(power, "power")
    if mde == 0 or not math.isfinite(mde):
        raise AnalysisError("the minimum detectable effect must be finite and non-zero")


def sample_size_mean(
    baseline_mean: float,
    baseline_variance: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    sequential: bool = False,
    tuning_n: float | None = None,
) -> SampleSize:
    """Sessions per cohort for a difference of means (relative MDE: a share of the baseline)."""
    _check(alpha, power, mde)
    if not baseline_variance > 0 or (relative and baseline_mean == 0):
        raise AnalysisError(
            "a sample size needs a positive variance (and a non-zero mean for a relative MDE)",
            context={"baseline_mean": baseline_mean, "baseline_variance": baseline_variance},
        )
    effect = abs(mde * baseline_mean if relative else mde)
    if sequential:
        z_power = float(special.ndtri(power))
        ok = _sequential_ok(effect, 2 * baseline_variance, alpha, z_power, tuning_n)
    else:
        d = effect / math.sqrt(baseline_variance)

        def ok(n: int) -> bool:
            # noncentral t power of the two-sided test, as statsmodels TTestIndPower
            df, nc = 2.0 * n - 2.0, d * math.sqrt(n / 2.0)
            crit = float(special.stdtrit(df, 1 - alpha / 2))
            achieved = 1 - special.nctdtr(df, nc, crit) + special.nctdtr(df, nc, -crit)
            return bool(achieved >= power)

    n = _smallest(ok)
    return SampleSize(n, 2 * n, effect, alpha, power, sequential)


def sample_size_proportion(
    baseline_rate: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    sequential: bool = False,
    tuning_n: float | None = None,
) -> SampleSize:
    """Sessions per cohort for a difference of proportions (relative MDE: a share of the rate)."""
    _check(alpha, power, mde)
    target = baseline_rate * (1 + mde) if relative else baseline_rate + mde
    if not (0 < baseline_rate < 1 and 0 < target < 1):
        raise AnalysisError(
            "baseline and target rates must lie in (0, 1)",
            context={"baseline_rate": baseline_rate, "target_rate": target},
        )
    effect = abs(target - baseline_rate)
    var_sum = baseline_rate * (1 - baseline_rate) + target * (1 - target)
    z_power = float(special.ndtri(power))
    if sequential:
        ok = _sequential_ok(effect, var_sum, alpha, z_power, tuning_n)
    else:
        z = float(special.ndtri(1 - alpha / 2))

        def ok(n: int) -> bool:
            # both tails, as statsmodels NormalIndPower
            shift = effect / math.sqrt(var_sum / n)
            return bool(special.ndtr(shift - z) + special.ndtr(-shift - z) >= power)

    n = _smallest(ok)
    return SampleSize(n, 2 * n, effect, alpha, power, sequential)


def sessions_still_needed(comparison: Comparison, *, power: float = 0.8) -> SessionsNeeded:
    """Sessions still to collect for `power` if the observed absolute effect were the truth.

    Keeps the comparison's alpha and, when it is sequential, its confidence
    sequence (with its tuning parameter).
    """
    check_alpha(power, "power")
    effect = comparison.absolute
    if effect.error is not None or effect.estimate == 0:
        error = effect.error or StatError.ZERO_EFFECT
        return SessionsNeeded(None, None, math.nan, power, error)
    alpha, se, target = comparison.alpha, effect.std_error, abs(effect.estimate)
    z_power = float(special.ndtri(power))
    if effect.tuning_n is None:
        scale = ((float(special.ndtri(1 - alpha / 2)) + z_power) * se / target) ** 2
    else:
        tuning_n = effect.tuning_n

        def reach(f: float) -> float:
            s = se / math.sqrt(f)
            return half_width(s, effect.n * f, alpha=alpha, tuning_n=tuning_n) + z_power * s

        low, high = 1e-6, 1.0
        while reach(high) > target:
            low, high = high, high * 2
        for _ in range(60):
            mid = math.sqrt(low * high)
            low, high = (low, mid) if reach(mid) <= target else (mid, high)
        scale = high
    sessions = comparison.control.n + comparison.treatment.n
    total = math.ceil(scale * sessions)
    return SessionsNeeded(max(0, total - sessions), max(total, sessions), scale, power)
