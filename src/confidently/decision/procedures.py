"""Multiple-testing procedures that certify an automation threshold: which thresholds are tested, in
what order, at what level, and where testing stops.

Every threshold ``λ`` of the grid carries the null hypothesis "predictions with confidence >= ``λ``
are less accurate than the target", with the exact binomial p-value of
:func:`~confidently.decision.binomial.binomial_p_value`. Hypotheses are taken from the strictest
threshold down. The family-wise error rate (the chance that any threshold whose true accuracy is below
the target gets certified) is at most ``delta = 1 - level`` for both procedures, so the loosest
rejected threshold may be certified:

``"fixed-sequence"``
    Learn-Then-Test fixed-sequence testing (Angelopoulos, Bates, Candès, Jordan & Lei 2021): skip the
    thresholds automating fewer than :func:`~confidently.decision.binomial.min_automated_for`
    predictions, test the rest at ``delta`` and stop at the first non-rejection. Valid because a false
    rejection needs the first true null in the order to be rejected, which happens with probability
    <= ``delta``. One unlucky error among the few most confident predictions ends testing.
``"fallback"`` (the default)
    Wiens' fallback procedure (Wiens 2003; one of the graph-based procedures the LTT paper points to)
    in the same order: ``delta`` is split into shares given to two *start* hypotheses, and every other
    hypothesis gets none of its own. A hypothesis is tested at its own share plus the level of the one
    before it when that one was rejected; a non-rejection passes nothing on, but the next start still
    gets its share. Valid whatever the dependence between the p-values: if the first true null rejected
    is ``H_j``, every true null before it was not rejected, so its level is at most the shares given
    after the previous true null up to ``H_j``; these bounds add up to at most ``delta`` over the true
    nulls, so by the union bound a true null is rejected with probability <= ``delta``. The starts: a
    quarter of ``delta`` at the strictest threshold automating enough predictions to certify one error
    at that share (as in the fixed sequence), three quarters at the strictest threshold automating at
    least a quarter of the rows, where a few errors no longer decide the outcome. With one start
    holding all of ``delta`` it is the fixed sequence.

Both procedures choose their starts from how many confidences pass each threshold, never from which
predictions are right. A threshold's p-value is exact given its own count, not given every count, so a
start chosen from the counts is checked by simulation (``tests/test_certification_validity.py``,
including a score model built so that the start skips a poor top band exactly when that band drew few
rows, and models whose accuracy is not monotone in confidence); ``benchmarks/certification_power.py``
measures what each procedure certifies.

References
----------
Wiens, B. L. (2003). A fixed sequence Bonferroni procedure for testing multiple endpoints.
Pharmaceutical Statistics 2(3), 211-215.
Angelopoulos, A. N., Bates, S., Candès, E. J., Jordan, M. I. & Lei, L. (2021). Learn then Test:
calibrating predictive algorithms to achieve risk control. arXiv:2110.01052.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from confidently.decision.binomial import min_automated_for
from confidently.defaults import (DEFAULT_PROCEDURE, FALLBACK, FIXED_SEQUENCE, PROCEDURES,  # noqa: F401 (re-exported)
                                  procedure_problem)
from confidently.errors import DataError

PROCEDURE_NAMES = {FALLBACK: "fallback testing (Wiens 2003)", FIXED_SEQUENCE: "fixed-sequence testing"}

# the fallback's split of delta between its strict start and its quarter-of-the-rows start, chosen on
# simulated and SST-2 scores (benchmarks/certification_power.py) before it became the default
STRICT_SHARE = 0.25
BROAD_SHARE = 1.0 - STRICT_SHARE
BROAD_FRACTION = 0.25


@dataclass(frozen=True)
class Start:
    """Where a share of ``delta`` enters the sequence: the strictest threshold automating >= ``min_automated``."""

    min_automated: int
    share: float


@dataclass(frozen=True)
class Outcome:
    """What a procedure did on one sequence of p-values (indices into that sequence, strictest first).

    Attributes
    ----------
    rejected : tuple of int
        Hypotheses rejected (their thresholds certified to meet the target).
    tested : tuple of int
        Hypotheses tested at a positive level, in order.
    levels : tuple of float
        The level each tested hypothesis was tested at (same order as ``tested``).
    start_indices : tuple of int or None
        The hypothesis each start entered at (None where no threshold automates enough).
    """

    rejected: tuple[int, ...]
    tested: tuple[int, ...]
    levels: tuple[float, ...]
    start_indices: tuple[int | None, ...]


def check_procedure(procedure: str) -> str:
    problem = procedure_problem(procedure)
    if problem:
        raise DataError(problem)
    return procedure


def describe(procedure: str, delta: float) -> str:
    """How ``procedure`` tests the thresholds and why no correction for their number is needed, in words."""
    if check_procedure(procedure) == FIXED_SEQUENCE:
        return (f"testing stops at the first p-value above {delta:.2g}. Because the order is fixed in advance, no "
                "correction for the number of thresholds is needed")
    return (f"testing follows the fallback procedure (Wiens 2003): {STRICT_SHARE:.0%} of delta ({delta:.2g}) enters "
            f"at the strictest threshold with enough predictions to allow one error at that share, "
            f"{BROAD_SHARE:.0%} at the strictest automating at least {BROAD_FRACTION:.0%} of the rows, and each "
            "rejected threshold passes its level on to the next, so one failure does not end testing. The levels "
            f"a wrong certificate could draw on add up to at most {delta:.2g}, so the chance of certifying a "
            f"threshold below the target stays <= {delta:.2g}")


def starts_for(procedure: str, target_accuracy: float, level: float, n: int,
               min_automated: int | None = None) -> tuple[Start, ...]:
    """The starts of ``procedure`` for ``n`` calibration rows (a function of target, level and n only).

    ``min_automated`` replaces the count of the strictest start (the fixed sequence's only one).
    """
    check_procedure(procedure)
    delta = 1.0 - level
    if procedure == FIXED_SEQUENCE:
        return (Start(min_automated or min_automated_for(target_accuracy, level), 1.0),)
    strict = min_automated or min_automated_for(target_accuracy, 1.0 - STRICT_SHARE * delta)
    broad = max(math.ceil(BROAD_FRACTION * n), min_automated_for(target_accuracy, 1.0 - BROAD_SHARE * delta))
    return Start(strict, STRICT_SHARE), Start(max(broad, strict), BROAD_SHARE)


def run_procedure(p_values: np.ndarray, n_automated: np.ndarray, starts: tuple[Start, ...],
                  delta: float) -> Outcome:
    """Fallback testing of ``p_values`` (strictest threshold first) with ``delta`` shared out by ``starts``.

    ``n_automated`` must not increase along the sequence's reverse (counts only grow as the threshold
    falls). A hypothesis is tested at its starts' shares of ``delta`` plus the level of the previous
    hypothesis when that one was rejected; hypotheses with level 0 are not tested.
    """
    own = np.zeros(len(p_values))
    start_indices: list[int | None] = []
    for start in starts:
        enough = np.flatnonzero(n_automated >= start.min_automated)
        start_indices.append(int(enough[0]) if enough.size else None)
        if enough.size:
            own[enough[0]] += start.share * delta
    rejected, tested, levels = [], [], []
    carried = 0.0
    for i, p in enumerate(p_values):
        alpha = own[i] + carried
        carried = 0.0
        if alpha <= 0.0:
            continue
        tested.append(i)
        levels.append(alpha)
        if p <= alpha:
            rejected.append(i)
            carried = alpha
    return Outcome(tuple(rejected), tuple(tested), tuple(levels), tuple(start_indices))
