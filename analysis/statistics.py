"""Sufficient statistics of a cohort's metric, poolable with `+`.

Shaped after GrowthBook gbstats' `SampleMeanStatistic`, `ProportionStatistic`
and `RatioStatistic`: frozen dataclasses holding counts and sums, with the mean
and variance as properties. Undefined moments (no data, one session, a zero
denominator) read as 0.0 here, as in gbstats; the inference functions detect
those cases and return a result carrying a `StatError` instead.

Every class exposes `n` (the number of independent units), `mean` and
`variance` (the per-unit variance of the mean's linearisation, so that the
variance of `mean` is `variance / n`): that is all `inference` needs. The
checks on creation and the pooling are `Sums`', written once for all of them
(and for `analysis.variance.CupedStats`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.errors import AnalysisError


class MeanVariance(Protocol):
    """What a two-sample test needs from each arm."""

    @property
    def n(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def variance(self) -> float: ...


class Sums:
    """A frozen dataclass of counts and sums: checked on creation, pooled field by field with `+`.

    `COUNTS` names the fields that count (non-negative); every other field is
    a sum and must be finite.
    """

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    COUNTS: ClassVar[tuple[str, ...]] = ("n",)

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in self.COUNTS:
            if values[name] < 0:
                raise AnalysisError(
                    f"a count cannot be negative, got {name}={values[name]}",
                    context={name: values[name]},
                )
        bad = {
            name: value
            for name, value in values.items()
            if name not in self.COUNTS and not math.isfinite(value)
        }
        if bad:
            raise AnalysisError(f"sufficient statistics must be finite, got {bad}", context=bad)

    def __add__(self, other: Self) -> Self:
        names = [f.name for f in dataclasses.fields(self)]
        pooled = {name: getattr(self, name) + getattr(other, name) for name in names}
        return dataclasses.replace(self, **pooled)


def as_vector(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Flatten to float64, raising if `name` holds NaN or infinite values."""
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)):
        raise AnalysisError(f"{name} contain NaN or infinite values", context={"field": name})
    return array


def sum_of_products(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """`sum(x * y)` with numpy's pairwise summation, not BLAS `x @ y`: a BLAS dot starts
    a thread pool whose spinning threads slow `analyze` down on a busy machine
    (`bench/bench_analysis.py`; figures in the README); the pairwise sum is also the
    more accurate of the two."""
    return float(np.multiply(x, y).sum())


def paired_sums(
    a: NDArray[np.float64], b: NDArray[np.float64]
) -> tuple[int, float, float, float, float, float]:
    """n, sum(a), sum(b), sum(a^2), sum(b^2) and sum(a b) of two aligned vectors."""
    return (
        int(a.size),
        float(a.sum()),
        float(b.sum()),
        sum_of_products(a, a),
        sum_of_products(b, b),
        sum_of_products(a, b),
    )


def _variance(n: int, total: float, total_squares: float) -> float:
    # unbiased sample variance (n - 1), clamped at 0 against rounding
    if n < 2:
        return 0.0
    return max(0.0, (total_squares - total * total / n) / (n - 1))


def covariance(n: int, sum_x: float, sum_y: float, sum_xy: float) -> float:
    """Sample covariance (n - 1) from sums; 0.0 below two units."""
    return 0.0 if n < 2 else (sum_xy - sum_x * sum_y / n) / (n - 1)


@dataclass(frozen=True, slots=True)
class SampleStats(Sums):
    """Count, sum and sum of squares of a per-session metric."""

    n: int
    sum: float
    sum_squares: float

    @classmethod
    def from_values(cls, values: ArrayLike) -> SampleStats:
        x = as_vector(values, "values")
        return cls(n=int(x.size), sum=float(x.sum()), sum_squares=sum_of_products(x, x))

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        return _variance(self.n, self.sum, self.sum_squares)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)


@dataclass(frozen=True, slots=True)
class ProportionStats(Sums):
    """Sessions and successes of a 0/1 metric; variance p(1 - p) as in a z-test."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        Sums.__post_init__(self)
        if not 0 <= self.successes <= self.n:
            raise AnalysisError(
                f"successes must lie in [0, n={self.n}], got {self.successes}",
                context={"n": self.n, "successes": self.successes},
            )

    @classmethod
    def from_values(cls, values: ArrayLike) -> ProportionStats:
        x = np.asarray(values).ravel()
        if x.size and not np.isin(x, (0, 1)).all():
            raise AnalysisError("a proportion is computed from 0/1 or boolean values")
        return cls(n=int(x.size), successes=int(np.count_nonzero(x)))

    @property
    def mean(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        return self.mean * (1.0 - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)


@dataclass(frozen=True, slots=True)
class RatioStats(Sums):
    """Per-unit sums of a numerator x and a denominator y, for the metric sum(x) / sum(y).

    Example: latency per turn, with x the session's summed turn latency and y
    its number of turns. `variance` is the per-unit delta-method variance of
    the ratio, covariance term included.
    """

    n: int
    sum_x: float
    sum_y: float
    sum_x2: float
    sum_y2: float
    sum_xy: float

    @classmethod
    def from_values(cls, numerators: ArrayLike, denominators: ArrayLike) -> RatioStats:
        x, y = as_vector(numerators, "numerators"), as_vector(denominators, "denominators")
        if x.shape != y.shape:
            raise AnalysisError(
                "numerators and denominators differ in length",
                context={"numerators": x.size, "denominators": y.size},
            )
        return cls(*paired_sums(x, y))

    @property
    def mean_x(self) -> float:
        return self.sum_x / self.n if self.n else 0.0

    @property
    def mean_y(self) -> float:
        return self.sum_y / self.n if self.n else 0.0

    @property
    def var_x(self) -> float:
        return _variance(self.n, self.sum_x, self.sum_x2)

    @property
    def var_y(self) -> float:
        return _variance(self.n, self.sum_y, self.sum_y2)

    @property
    def cov_xy(self) -> float:
        return covariance(self.n, self.sum_x, self.sum_y, self.sum_xy)

    @property
    def mean(self) -> float:
        return self.sum_x / self.sum_y if self.sum_y else 0.0

    @property
    def variance(self) -> float:
        # delta method for mean_x / mean_y (Deng, Knoblich and Yu 2018, eq. 3)
        if not self.sum_y:
            return 0.0
        mx, my = self.mean_x, self.mean_y
        v = self.var_x / my**2 - 2 * mx * self.cov_xy / my**3 + mx**2 * self.var_y / my**4
        return max(0.0, v)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)


@dataclass(frozen=True, slots=True)
class ClusterStats(Sums):
    """A metric summed per cluster (tenant), for cluster-robust inference.

    Each cluster contributes x (the metric summed over its sessions or turns)
    and y (its number of sessions or turns); the mean is sum(x) / sum(y) and
    the variance is the delta method over clusters, which is the
    cluster-robust variance. `n` counts clusters, `n_units` sessions.
    """

    n: int
    n_units: int
    sum_x: float
    sum_y: float
    sum_x2: float
    sum_y2: float
    sum_xy: float

    COUNTS = ("n", "n_units")

    @classmethod
    def from_values(
        cls, values: ArrayLike, clusters: ArrayLike, denominators: ArrayLike | None = None
    ) -> ClusterStats:
        """Group unit-level `values` (and `denominators`, default 1 each) by `clusters`."""
        x = as_vector(values, "values")
        y = np.ones_like(x) if denominators is None else as_vector(denominators, "denominators")
        keys = np.asarray(clusters).ravel()
        if not x.shape == y.shape == keys.shape:
            raise AnalysisError("values, clusters and denominators differ in length")
        _, inverse = np.unique(keys, return_inverse=True)
        return cls.from_cluster_sums(
            np.bincount(inverse, weights=x), np.bincount(inverse, weights=y), n_units=x.size
        )

    @classmethod
    def from_cluster_sums(
        cls, numerators: ArrayLike, denominators: ArrayLike, *, n_units: int
    ) -> ClusterStats:
        """Build from one numerator and one denominator sum per cluster."""
        r = RatioStats.from_values(numerators, denominators)
        return cls(r.n, int(n_units), r.sum_x, r.sum_y, r.sum_x2, r.sum_y2, r.sum_xy)

    @property
    def ratio(self) -> RatioStats:
        """The same sums read as a ratio metric whose units are the clusters."""
        return RatioStats(self.n, self.sum_x, self.sum_y, self.sum_x2, self.sum_y2, self.sum_xy)

    @property
    def mean(self) -> float:
        return self.ratio.mean

    @property
    def variance(self) -> float:
        return self.ratio.variance

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)
