"""Confidence intervals across replications, and when they cannot be trusted.

The interval of a mean over replications is Student's t (95 %). It rests on the
replication means being close to normal, which fails in two ways the estimate
says out loud (``flag``) instead of printing a number that looks exact:

* **too few events**: the KPI takes one value in most replications (a rare event:
  nobody left in the system, no wait at the 90th percentile at low load) and fewer
  than ``MIN_DEPARTING`` replications differ from it. Then the spread is not
  observed: with no departure at all the t interval is ``0 [0, 0]``. The rule is
  the usual one for the normal approximation of a proportion (at least five
  cases on each side).
* **skewed**: the per-replication values are so skewed that ``n`` replications
  are too few for the mean to be normal, by Cochran's rule (normal enough when
  n > 25 G1², G1 the sample skewness; Cochran, *Sampling Techniques*, 3rd ed.,
  1977, §2.15), and the skew is real: G1 is more than twice its standard error
  under normality (Joanes & Gill, *The Statistician* 47, 1998), since over ten
  replications of normal values |G1| alone breaks Cochran's bound one time in
  three. These estimates also carry a bias-corrected and accelerated (BCa)
  bootstrap interval (Efron, JASA 82, 1987), which follows the skew.
"""

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

MIN_DEPARTING = 5
"""Replications that must differ from the most common value for a t interval."""
COCHRAN = 25.0
"""The mean of n values with skewness G1 is normal enough when n > COCHRAN × G1²."""
BOOTSTRAP_RESAMPLES = 4000
_BOOTSTRAP_SEED = 20_201_987  # fixed: the same values always give the same interval

TOO_FEW_EVENTS = "too_few_events"
SKEWED = "skewed"


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
    """A mean over replications with its 95 % confidence half-width, and a warning.

    ``flag`` is None, ``"too_few_events"`` or ``"skewed"``; skewed estimates carry
    a BCa bootstrap interval in ``boot_low``/``boot_high``.
    """

    mean: float
    half_width: float
    n: int
    flag: str | None = None
    boot_low: float = math.nan
    boot_high: float = math.nan

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def as_dict(self) -> dict[str, float | int | str | None]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        found: dict[str, float | int | str | None] = {
            "mean": clean(self.mean),
            "ci_low": clean(self.low),
            "ci_high": clean(self.high),
            "n": self.n,
            "flag": self.flag,
        }
        if self.flag == SKEWED:
            found["boot_low"] = clean(self.boot_low)
            found["boot_high"] = clean(self.boot_high)
        return found


def departing(x: np.ndarray) -> int | None:
    """Replications that differ from the most common value, or None when no value repeats."""
    _, counts = np.unique(x, return_counts=True)
    top = int(counts.max())
    return None if top < 2 else len(x) - top


def skewness(x: np.ndarray) -> float:
    """The adjusted Fisher-Pearson sample skewness G1 (0 for constant values)."""
    n = len(x)
    d = x - x.mean()
    m2 = float(np.mean(d**2))
    if n < 3 or m2 == 0:
        return 0.0
    g1 = float(np.mean(d**3)) / m2**1.5
    return float(g1 * math.sqrt(n * (n - 1)) / (n - 2))


def skewness_se(n: int) -> float:
    """Standard error of G1 for ``n`` normal values (Joanes & Gill 1998)."""
    if n < 3:
        return math.inf
    return math.sqrt(6 * n * (n - 1) / ((n - 2) * (n + 1) * (n + 3)))


def is_skewed(x: np.ndarray) -> bool:
    """Too skewed for a t interval over ``len(x)`` replications (see the module notes)."""
    g1 = skewness(x)
    return len(x) <= COCHRAN * g1**2 and abs(g1) > 2 * skewness_se(len(x))


def bca_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The BCa bootstrap interval of the mean of ``x`` (Efron 1987), reproducibly."""
    n = len(x)
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    chunk = max(1, min(BOOTSTRAP_RESAMPLES, 1_000_000 // n))  # a few MB at a time
    means = np.concatenate(
        [
            x[rng.integers(0, n, size=(min(chunk, BOOTSTRAP_RESAMPLES - done), n))].mean(axis=1)
            for done in range(0, BOOTSTRAP_RESAMPLES, chunk)
        ]
    )
    theta = float(x.mean())
    below = (np.count_nonzero(means < theta) + 0.5 * np.count_nonzero(means == theta)) / len(means)
    normal = NormalDist()
    z0 = normal.inv_cdf(min(max(below, 1e-6), 1 - 1e-6))
    jack = (x.sum() - x) / (n - 1)  # leave-one-out means
    d = jack.mean() - jack
    spread = float(np.sum(d**2))
    accel = float(np.sum(d**3)) / (6 * spread**1.5) if spread > 0 else 0.0
    bounds = []
    for alpha in ((1 - level) / 2, (1 + level) / 2):
        z = z0 + normal.inv_cdf(alpha)
        bounds.append(normal.cdf(z0 + z / (1 - accel * z)))
    low, high = np.quantile(means, bounds)
    return float(low), float(high)


def estimate(values: list[float] | np.ndarray) -> Estimate:
    """Mean and 95 % CI of per-replication values, ignoring replications without a value."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    if n == 1:
        return Estimate(float(x[0]), math.nan, 1)
    mean = float(x.mean())
    half = t975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    apart = departing(x)
    if apart is not None and apart < MIN_DEPARTING:
        return Estimate(mean, half, n, TOO_FEW_EVENTS)
    if is_skewed(x):
        low, high = bca_interval(x)
        return Estimate(mean, half, n, SKEWED, low, high)
    return Estimate(mean, half, n)
