"""Confidence intervals across replications (Student's t, 95 %)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# two-sided 95 % Student t quantiles t(0.975, df) for df = 1..30
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """The 97.5 % quantile of Student's t (normal beyond 30 degrees of freedom, within 2 %).

    >>> t975(9), round(t975(1000), 3)
    (2.262, 1.962)
    """
    if df < 1:
        return math.nan
    if df <= 30:
        return _T975[df - 1]
    z = NormalDist().inv_cdf(0.975)
    return z + (z**3 + z) / (4 * df)  # Cornish-Fisher first term


@dataclass(frozen=True)
class Estimate:
    """A mean over replications with its 95 % confidence half-width."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def as_dict(self) -> dict[str, float | int | None]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        return {
            "mean": clean(self.mean),
            "ci_low": clean(self.low),
            "ci_high": clean(self.high),
            "n": self.n,
        }


def estimate(values: list[float] | np.ndarray) -> Estimate:
    """Mean and 95 % CI of per-replication values, ignoring replications without a value."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    if n == 1:
        return Estimate(float(x[0]), math.nan, 1)
    return Estimate(float(x.mean()), t975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n), n)
