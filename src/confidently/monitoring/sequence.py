"""An anytime-valid confidence sequence for a success rate, for a count that is looked at again and again.

The live accuracy is recomputed after every audited text. A fixed-n interval (Clopper–Pearson) holds
at one look chosen in advance; checked after every audit, it misses the true rate at *some* look far
more often than its level says, so an alarm on it fires by chance over a long deployment. A
confidence sequence holds at every look at once: with probability >= ``level``, the true rate lies
between the bounds after the first audit, the second, and every one after, however long the
deployment runs.

This one is Robbins' beta-binomial mixture. For ``S`` successes in ``n`` independent trials of rate
``p``, the likelihood ratio of a Beta(a, b) mixture of rates against ``p``,

.. math:: M_n(p) = \\frac{B(a + S,\\ b + n - S)}{B(a, b)\\ p^S (1 - p)^{n - S}},

is a nonnegative martingale with mean 1 when ``p`` is the true rate, so by Ville's inequality
``P(M_n(p) >= 1 / (1 - level) for some n) <= 1 - level``. The sequence is the set of rates not yet
rejected, ``{p : M_n(p) < 1 / (1 - level)}``: an interval around ``S / n`` (``log M_n`` is convex in
``p``), found by bisection. It depends on the counts only, not on the order the audits came in. It
assumes what the single-look interval assumes too: independent trials of one steady rate (a random
audit sample of traffic whose accuracy does not change; a change is what the drift report is for). The
prior is uniform (a = b = 1), so it favours no accuracy: the bounds are wider than a single-look
interval (at 900 of 1,000 right: 0.862-0.931 against Clopper–Pearson's 0.883-0.915 one-sided 95%),
and that is the price of looking as often as one likes.

References
----------
Robbins, H. (1970). Statistical methods related to the law of the iterated logarithm. Annals of
Mathematical Statistics 41(5). Howard, S. R., Ramdas, A., McAuliffe, J. & Sekhon, J. (2021).
Time-uniform, nonparametric, nonasymptotic confidence sequences. Annals of Statistics 49(2).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, xlog1py, xlogy

from confidently.errors import DataError

#: The mixture's Beta prior on the rate: uniform.
PRIOR = (1.0, 1.0)
#: Halvings of the bracket; 2**-50 is below float spacing near 1.
BISECTIONS = 50
#: The method, in words, for reports.
METHOD = "Robbins' beta-binomial mixture (uniform prior) with Ville's inequality"


def confidence_sequence(successes: ArrayLike, trials: ArrayLike,
                        level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the anytime-valid confidence sequence at ``level`` (see the module docstring).

    Vectorised over ``successes`` and ``trials`` (broadcast together). With probability >= ``level`` the
    true rate lies within the bounds at every ``trials`` simultaneously; each bound alone holds with at
    least that probability too. Each bound is rounded outwards (the bisection keeps the rejected side).
    NaN where ``trials`` is 0.
    """
    k, m = np.broadcast_arrays(np.asarray(successes, dtype=float), np.asarray(trials, dtype=float))
    if np.any(k < 0) or np.any(k > m):
        raise DataError("need 0 <= successes <= trials")
    if not 0.0 < level < 1.0:
        raise DataError(f"level must be in (0, 1); got {level!r}")
    failures = m - k
    a, b = PRIOR
    # p stays in the sequence while log p^S (1-p)^F exceeds this (log M_n(p) < log 1/(1 - level))
    floor = betaln(a + k, b + failures) - betaln(a, b) + np.log1p(-level)
    rate = np.divide(k, m, out=np.full_like(k, 0.5), where=m > 0)  # the maximum, always inside

    def inside(p: np.ndarray) -> np.ndarray:
        return xlogy(k, p) + xlog1py(failures, -p) > floor

    lower = _boundary(inside, outside=np.zeros_like(k), within=rate)
    upper = _boundary(inside, outside=np.ones_like(k), within=rate)
    lower = np.where(k == 0, 0.0, lower)
    upper = np.where(failures == 0, 1.0, upper)
    return np.where(m == 0, np.nan, lower), np.where(m == 0, np.nan, upper)


def _boundary(inside: Callable[[np.ndarray], np.ndarray], *, outside: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Bisect between points ``outside`` and ``within`` the sequence; return the outside end (conservative)."""
    for _ in range(BISECTIONS):
        middle = (outside + within) / 2
        keep = inside(middle)
        within = np.where(keep, middle, within)
        outside = np.where(keep, outside, middle)
    return outside
