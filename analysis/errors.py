"""The one exception base of `analysis/` and the codes of degenerate results.

Two kinds of trouble, two mechanisms (as in GrowthBook gbstats):

* `AnalysisError` is raised for input that is wrong whatever the data
  (a negative count, alpha outside (0, 1), arrays of different lengths);
  `service/` maps its `code` to an HTTP status.
* `StatError` is carried inside a result when the data cannot support the
  statistic (no sessions, zero variance, a control mean of zero): the
  computation returns normally, the numbers it cannot give are NaN and
  `error` says why. No NaN leaves this package without an error beside it.
"""

from __future__ import annotations

from enum import StrEnum

from experiments.errors import CodedError


class ErrorCode(StrEnum):
    """Why an operation of `analysis/` failed."""

    INVALID_INPUT = "invalid_input"
    UNKNOWN_COHORT = "unknown_cohort"
    NO_DATA = "no_data"


class StatError(StrEnum):
    """Why a statistic could not be computed from the data it was given."""

    NO_DATA = "no_data"
    TOO_FEW_SAMPLES = "too_few_samples"
    TOO_FEW_GROUPS = "too_few_groups"
    ZERO_VARIANCE = "zero_variance"
    CONTROL_MEAN_ZERO = "control_mean_zero"
    ZERO_DENOMINATOR = "zero_denominator"
    ZERO_EFFECT = "zero_effect"


class AnalysisError(CodedError[ErrorCode]):
    """Base of every error raised by `analysis/`.

    `context` holds machine-readable detail (the metric, the cohort, the
    offending value) that the HTTP layer returns as it is.
    """

    code = ErrorCode.INVALID_INPUT


# Below about 2e-16 the two-sided level 1 - alpha/2 rounds to 1.0 and its normal
# quantile is infinite; this round bound keeps every interval finite.
MIN_ALPHA = 1e-12


def check_alpha(alpha: float, name: str = "alpha") -> None:
    """Raise unless `alpha` is a probability in [MIN_ALPHA, 1)."""
    if not MIN_ALPHA <= alpha < 1.0:
        raise AnalysisError(
            f"{name} must lie in [{MIN_ALPHA:g}, 1), got {alpha!r}", context={name: alpha}
        )
