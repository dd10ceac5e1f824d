"""Exact binomial statistics behind every accuracy guarantee: Clopper–Pearson bounds and intervals,
the one-sided binomial p-value, and the smallest group of automated predictions worth testing."""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaincinv
from scipy.stats import binom

from confidently.errors import DataError


def clopper_pearson_lower(successes: ArrayLike, trials: ArrayLike, level: float = 0.95) -> np.ndarray:
    """One-sided Clopper–Pearson lower confidence bound on a binomial proportion.

    .. math::
        L = B^{-1}(1 - \\text{level};\\ k,\\ m - k + 1), \\quad L = 0 \\text{ if } k = 0,

    the ``1 - level`` quantile of a Beta(k, m - k + 1) distribution, for ``k`` successes in ``m``
    trials: with probability at least ``level`` the true proportion is >= ``L``. NaN where
    ``m = 0``.

    References
    ----------
    Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or fiducial limits illustrated in
    the case of the binomial. Biometrika 26(4).
    """
    k = np.asarray(successes, dtype=float)
    m = np.asarray(trials, dtype=float)
    if np.any(k < 0) or np.any(k > m):
        raise DataError("need 0 <= successes <= trials")
    if not 0.0 < level < 1.0:
        raise DataError(f"level must be in (0, 1); got {level!r}")
    # k = 0 has the closed form L = 0; a placeholder k keeps betaincinv away from a zero shape
    bound = betaincinv(np.where(k > 0, k, 1.0), m - k + 1.0, 1.0 - level)
    return np.where(m == 0, np.nan, np.where(k == 0, 0.0, bound))


def clopper_pearson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper–Pearson) interval for a proportion; ``(nan, nan)`` when ``trials`` is 0."""
    if trials == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0
    low = 0.0 if successes == 0 else float(betaincinv(successes, trials - successes + 1, tail))
    high = 1.0 if successes == trials else float(betaincinv(successes + 1, trials - successes, 1.0 - tail))
    return low, high


def binomial_p_value(errors: ArrayLike, trials: ArrayLike, target_accuracy: float) -> np.ndarray:
    """Exact p-value of "accuracy < ``target_accuracy``" given ``errors`` mistakes in ``trials`` predictions.

    .. math:: p = P(\\text{Bin}(m, 1 - \\text{target}) \\le e),

    the chance of seeing this few errors if the error rate were ``1 - target`` (the boundary of the
    null hypothesis; a larger error rate makes so few errors rarer still). ``p <= delta`` exactly
    when the one-sided ``1 - delta`` Clopper–Pearson lower bound is >= the target. NaN where
    ``m = 0``.
    """
    e = np.asarray(errors, dtype=float)
    m = np.asarray(trials, dtype=float)
    if np.any(e < 0) or np.any(e > m):
        raise DataError("need 0 <= errors <= trials")
    check_target(target_accuracy)
    with np.errstate(invalid="ignore"):
        p = binom.cdf(e, m, 1.0 - target_accuracy)
    return np.where(m == 0, np.nan, p)


def min_automated_for(target_accuracy: float, level: float) -> int:
    """The default minimum count of automated predictions before a threshold is tested.

    The smallest ``m`` at which one automated mistake could still be certified, i.e. with
    ``P(Bin(m, 1 - target) <= 1) <= 1 - level`` (93 for a 95% target at 95%). Stricter thresholds
    with fewer automated predictions are skipped rather than tested: a test there could only fail
    and would end the fixed sequence before it reaches thresholds with enough data. The rule depends
    only on the target and the level, so it is fixed before the data are seen.
    """
    check_target(target_accuracy)
    check_level(level)
    if target_accuracy >= 1.0:
        return 1  # no count certifies perfect accuracy; testing then ends at the first threshold
    m = 2
    while binom.cdf(1, m, 1.0 - target_accuracy) > 1.0 - level:
        m *= 2
    low, high = m // 2, m  # the smallest qualifying count lies in (low, high]
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if binom.cdf(1, mid, 1.0 - target_accuracy) <= 1.0 - level else (mid, high)
    return high


def check_target(target_accuracy: float) -> None:
    if not (isinstance(target_accuracy, numbers.Real) and 0.0 < target_accuracy <= 1.0):
        raise DataError(f"target_accuracy must be in (0, 1]; got {target_accuracy!r}")


def check_level(level: float) -> None:
    if not (isinstance(level, numbers.Real) and 0.0 < level < 1.0):
        raise DataError(f"level must be in (0, 1); got {level!r}")
