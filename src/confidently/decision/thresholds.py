"""From calibrated confidence to decisions: which predictions to automate and which to send to review.

A threshold ``t`` automates every prediction with confidence >= ``t`` and sends the rest to a person.
For a grid of thresholds (0.50 to 0.99 by default) this module counts what is automated, how accurate
it is, and what it costs, and picks two thresholds on labelled calibration data:

* the *cost-optimal* one, minimising ``review_cost * n_review + error_cost * n_automated_errors``;
* the *certified* one, by Learn-Then-Test (Angelopoulos, Bates, Candès, Jordan & Lei 2021): for each
  threshold the null hypothesis "the automated predictions are less accurate than
  ``target_accuracy``" gets the exact binomial p-value ``P(Bin(n_automated, 1 - target) <= errors)``;
  thresholds are tested from the strictest down by a procedure that keeps the family-wise error at
  ``delta = 1 - level`` (:mod:`~confidently.decision.procedures`: the fallback procedure by default, or
  the fixed sequence that stops at the first non-rejection). The certified threshold is the loosest
  one rejected, so the chance that its accuracy on new data is below the target is at most ``delta``.

Thresholds are *chosen* on calibration data only; :func:`measure_thresholds` then describes what every
threshold does on other data (a test split) without choosing anything there.

:class:`~confidently.decision.policy.DecisionPolicy` stores the chosen threshold, with its guarantee in words,
and applies it; :mod:`~confidently.decision.binomial` holds the exact binomial statistics and
:mod:`~confidently.decision.volume` projects a rule onto a volume of new items.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_confidence, check_correct
from confidently.decision.binomial import binomial_p_value, check_level, check_target, clopper_pearson_lower
from confidently.decision.procedures import (DEFAULT_PROCEDURE, FIXED_SEQUENCE, Outcome, Start, check_procedure,
                                             run_procedure, starts_for)
from confidently.errors import DataError
from confidently.metrics.results import jsonable



def threshold_grid(start: float = 0.50, stop: float = 0.99, step: float = 0.01) -> np.ndarray:
    """Thresholds ``start, start + step, ..., stop`` (inclusive), rounded to 10 decimals.

    Rounding makes 0.7 the float ``0.7`` rather than ``0.7000000000000001``, so that a confidence of
    exactly 0.7 is automated at threshold 0.7.
    """
    if not (0.0 <= start <= stop <= 1.0 and step > 0):
        raise DataError(f"need 0 <= start <= stop <= 1 and step > 0; got start={start}, stop={stop}, step={step}")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    return np.round(start + step * np.arange(count), 10)


@dataclass(frozen=True)
class ThresholdRow:
    """What one threshold does to a set of predictions.

    Attributes
    ----------
    threshold : float
    n_automated : int
        Predictions with confidence >= threshold.
    coverage : float
        ``n_automated / n``.
    accuracy : float
        Accuracy of the automated predictions (NaN when none).
    accuracy_lower_bound : float
        One-sided Clopper–Pearson lower bound on that accuracy at the analysis level (NaN when none).
    p_value : float
        Exact binomial p-value of "their accuracy is below the target" (:func:`binomial_p_value`;
        NaN when none).
    n_automated_errors : int
    n_review : int
        Predictions sent to review, ``n - n_automated``.
    cost : float
        ``review_cost * n_review + error_cost * n_automated_errors``.
    cost_per_item : float
        ``cost / n``.
    """

    threshold: float
    n_automated: int
    coverage: float
    accuracy: float
    accuracy_lower_bound: float
    p_value: float
    n_automated_errors: int
    n_review: int
    cost: float
    cost_per_item: float

    def to_dict(self) -> dict[str, Any]:
        return {key: jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class CertifiedThreshold:
    """The threshold certified by Learn-Then-Test, or ``threshold=None``.

    Attributes
    ----------
    threshold : float or None
        The loosest threshold rejected; ``None`` when none was: then nothing may be automated.
    target_accuracy, level : float
        The target and the confidence level ``1 - delta`` of the guarantee.
    coverage : float
        Share of predictions automated at that threshold (0 when none qualifies).
    n_automated : int
    accuracy, accuracy_lower_bound, p_value : float
        Observed accuracy, its one-sided Clopper–Pearson lower bound and the binomial p-value at that
        threshold (NaN when none qualifies).
    min_automated : int
        Thresholds automating fewer predictions were not tested (the count of the strictest start of
        :func:`~confidently.decision.procedures.starts_for`).
    n_tested : int
        Thresholds tested at a positive level (the failed ones included).
    reason : str
        One sentence saying what was found, what was tested and where testing stopped.
    procedure : str
        The testing procedure (:data:`~confidently.decision.procedures.PROCEDURES`).
    """

    threshold: float | None
    target_accuracy: float
    level: float
    coverage: float
    n_automated: int
    accuracy: float
    accuracy_lower_bound: float
    p_value: float
    min_automated: int
    n_tested: int
    reason: str
    procedure: str = FIXED_SEQUENCE

    @property
    def certified(self) -> bool:
        return self.threshold is not None

    @property
    def guarantee(self) -> str:
        """The guarantee in words (or that there is none)."""
        return guarantee_text(self.target_accuracy, self.level, certified=self.certified)

    def to_dict(self) -> dict[str, Any]:
        return {**{key: jsonable(value) for key, value in asdict(self).items()}, "certified": self.certified,
                "guarantee": self.guarantee}


def guarantee_text(target_accuracy: float, level: float, *, certified: bool) -> str:
    """The sentence a certified policy promises (the same in reports, policies and the server)."""
    if not certified:
        return (f"no threshold could be certified for {target_accuracy:.0%} accuracy at {level:.0%} confidence, "
                "so every prediction goes to review")
    return (f"with probability >= {level:.0%} over the calibration sample, the accuracy of automated "
            f"predictions is >= {target_accuracy:.0%} (on new data drawn like the calibration data)")


@dataclass(frozen=True)
class ThresholdMeasurement:
    """Every threshold of a grid measured on one set of predictions; nothing is chosen.

    Attributes
    ----------
    rows : tuple of ThresholdRow
        One per threshold, increasing.
    n : int
        Number of predictions measured.
    review_cost, error_cost : float
        Cost of reviewing one item, and of one automated mistake.
    target_accuracy, level : float
        The target of the p-values and the level of the lower bounds.
    """

    rows: tuple[ThresholdRow, ...]
    n: int
    review_cost: float
    error_cost: float
    target_accuracy: float
    level: float

    def at(self, threshold: float) -> ThresholdRow:
        """The row of ``threshold`` (which must be on the grid)."""
        for row in self.rows:
            if math.isclose(row.threshold, threshold, abs_tol=1e-9):
                return row
        raise DataError(f"threshold {threshold} is not on the measured grid")

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "review_cost": self.review_cost, "error_cost": self.error_cost,
                "target_accuracy": self.target_accuracy, "level": self.level,
                "rows": [row.to_dict() for row in self.rows]}

    def to_frame(self) -> pd.DataFrame:
        """One row per threshold, columns as in :class:`ThresholdRow`."""
        return pd.DataFrame([asdict(row) for row in self.rows])


@dataclass(frozen=True)
class ThresholdAnalysis(ThresholdMeasurement):
    """A measurement of calibration data plus the two thresholds chosen on it.

    Attributes
    ----------
    optimal : ThresholdRow
        Lowest-cost row (the lowest threshold among equal costs, which automates most).
    certified : CertifiedThreshold
        The Learn-Then-Test certificate.
    """

    optimal: ThresholdRow
    certified: CertifiedThreshold

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "optimal": self.optimal.to_dict(), "certified": self.certified.to_dict()}


def measure_thresholds(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    thresholds: Sequence[float] | None = None,
    review_cost: float = 1.0,
    error_cost: float = 10.0,
    target_accuracy: float = 0.95,
    level: float = 0.95,
    never_automated: ArrayLike | None = None,
) -> ThresholdMeasurement:
    """Automation, accuracy and cost at each threshold, choosing none (use it on a test split).

    Parameters are as in :func:`analyse_thresholds`.
    """
    conf = check_confidence(confidence)
    hits = check_correct(correct, n_samples=conf.size)
    if never_automated is not None:
        # Below every threshold: reviewed (and costed as a review) whatever its confidence.
        conf = np.where(check_correct(never_automated, n_samples=conf.size, name="never_automated"), -np.inf, conf)
    grid = threshold_grid() if thresholds is None else _check_thresholds(thresholds)
    for name, value in (("review_cost", review_cost), ("error_cost", error_cost)):
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
            raise DataError(f"{name} must be a finite number >= 0; got {value!r}")
    check_target(target_accuracy)
    check_level(level)

    n = conf.size
    order = np.argsort(conf, kind="stable")
    sorted_conf = conf[order]
    # errors among the i lowest-confidence predictions, so errors above a cut = total - prefix
    errors_below = np.concatenate([[0], np.cumsum(~hits[order])])
    first_automated = np.searchsorted(sorted_conf, grid, side="left")
    n_automated = n - first_automated
    n_errors = errors_below[-1] - errors_below[first_automated]
    n_correct = n_automated - n_errors
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n_automated > 0, n_correct / np.maximum(n_automated, 1), np.nan)
    lower = clopper_pearson_lower(n_correct, n_automated, level)
    p_values = binomial_p_value(n_errors, n_automated, target_accuracy)
    cost = review_cost * first_automated + error_cost * n_errors
    rows = tuple(
        ThresholdRow(
            threshold=float(grid[i]),
            n_automated=int(n_automated[i]),
            coverage=float(n_automated[i] / n),
            accuracy=float(acc[i]),
            accuracy_lower_bound=float(lower[i]),
            p_value=float(p_values[i]),
            n_automated_errors=int(n_errors[i]),
            n_review=int(first_automated[i]),
            cost=float(cost[i]),
            cost_per_item=float(cost[i] / n),
        )
        for i in range(grid.size)
    )
    return ThresholdMeasurement(rows=rows, n=n, review_cost=float(review_cost), error_cost=float(error_cost),
                                target_accuracy=float(target_accuracy), level=float(level))


def analyse_thresholds(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    thresholds: Sequence[float] | None = None,
    review_cost: float = 1.0,
    error_cost: float = 10.0,
    target_accuracy: float = 0.95,
    level: float = 0.95,
    min_automated: int | None = None,
    procedure: str = DEFAULT_PROCEDURE,
    never_automated: ArrayLike | None = None,
) -> ThresholdAnalysis:
    """Measure every threshold on calibration data and choose the cost-optimal and certified ones.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Calibrated top-label confidence, from a calibrator that did not see these rows.
    correct : array-like of shape (n_samples,)
        Whether each prediction is correct.
    thresholds : sequence of float, optional
        Increasing; defaults to :func:`threshold_grid` (0.50 to 0.99 by 0.01). The certificate tests
        them from the last (strictest) down.
    review_cost : float, default=1.0
        Cost of sending one prediction to review.
    error_cost : float, default=10.0
        Cost of one automated mistake (the default says a mistake costs ten reviews; set your own).
    target_accuracy : float, default=0.95
        Accuracy the certified threshold must guarantee.
    level : float, default=0.95
        Confidence ``1 - delta`` of the guarantee.
    min_automated : int, optional
        Test no threshold automating fewer predictions (the count of the strictest start); default
        :func:`~confidently.decision.binomial.min_automated_for` at that start's share of ``delta``.
    procedure : {"fallback", "fixed-sequence"}, default="fallback"
        How the thresholds are tested (:mod:`~confidently.decision.procedures`).
    never_automated : array-like of bool, shape (n_samples,), optional
        Rows the decision always sends to review (truncated texts, see
        :func:`~confidently.decision.decisions.decide`): they count as reviewed at every threshold, so the
        certified accuracy is that of the rows the policy will really automate.

    Notes
    -----
    The guarantee: with probability at least ``level`` over the draw of these rows, the accuracy of
    predictions automated at the certified threshold, on new data from the same distribution, is at
    least ``target_accuracy``. It needs the confidences to come from a score function fixed without
    these rows (a calibrator fitted elsewhere, or cross-fitted). Where testing starts depends only on
    how many confidences pass each threshold, never on which predictions are right.
    """
    measured = measure_thresholds(confidence, correct, thresholds=thresholds, review_cost=review_cost,
                                  error_cost=error_cost, target_accuracy=target_accuracy, level=level,
                                  never_automated=never_automated)
    minimum = None if min_automated is None else _check_minimum(min_automated)
    costs = [row.cost for row in measured.rows]
    return ThresholdAnalysis(**{f.name: getattr(measured, f.name) for f in fields(ThresholdMeasurement)},
                             optimal=measured.rows[int(np.argmin(costs))],
                             certified=_certify(measured.rows, measured.n, target_accuracy, level,
                                                check_procedure(procedure), minimum))


def threshold_table(confidence: ArrayLike, correct: ArrayLike, **kwargs: Any) -> pd.DataFrame:
    """:func:`measure_thresholds` as a DataFrame, one row per threshold (same keyword arguments)."""
    return measure_thresholds(confidence, correct, **kwargs).to_frame()


def certify_threshold(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    target_accuracy: float = 0.95,
    level: float = 0.95,
    thresholds: Sequence[float] | None = None,
    min_automated: int | None = None,
    procedure: str = DEFAULT_PROCEDURE,
    never_automated: ArrayLike | None = None,
) -> CertifiedThreshold:
    """The Learn-Then-Test certified threshold on calibration data (see :func:`analyse_thresholds`)."""
    return analyse_thresholds(confidence, correct, thresholds=thresholds, target_accuracy=target_accuracy,
                              level=level, min_automated=min_automated, procedure=procedure,
                              never_automated=never_automated).certified


def _certify(rows: Sequence[ThresholdRow], n: int, target: float, level: float, procedure: str,
             min_automated: int | None) -> CertifiedThreshold:
    """Test the thresholds from the strictest down by ``procedure``; certify the loosest one rejected."""
    delta = 1.0 - level
    ordered = rows[::-1]
    starts = starts_for(procedure, target, level, n, min_automated)
    outcome = run_procedure(np.array([row.p_value for row in ordered]), np.array([row.n_automated for row in ordered]),
                            starts, delta)
    chosen = ordered[max(outcome.rejected)] if outcome.rejected else None
    where = _what_was_tested(ordered, outcome, starts, delta)
    common = {"target_accuracy": target, "level": level, "min_automated": starts[0].min_automated,
              "n_tested": len(outcome.tested), "procedure": procedure}
    if chosen is None:
        return CertifiedThreshold(
            threshold=None, coverage=0.0, n_automated=0, accuracy=math.nan, accuracy_lower_bound=math.nan,
            p_value=math.nan, **common,
            reason=f"no threshold certifies {target:.1%} accuracy ({where}); label more data or lower the target")
    return CertifiedThreshold(
        threshold=chosen.threshold, coverage=chosen.coverage, n_automated=chosen.n_automated,
        accuracy=chosen.accuracy, accuracy_lower_bound=chosen.accuracy_lower_bound, p_value=chosen.p_value,
        **common,
        reason=(f"at threshold {chosen.threshold:.2f}, {chosen.n_automated} automated predictions are "
                f"{chosen.accuracy:.1%} correct (p = {chosen.p_value:.3g} <= {_tested_at(outcome, ordered, chosen):.3g}; "
                f"{level:.0%} lower bound {chosen.accuracy_lower_bound:.1%}); {where}"),
    )


def _tested_at(outcome: Outcome, ordered: Sequence[ThresholdRow], row: ThresholdRow) -> float:
    return outcome.levels[outcome.tested.index(list(ordered).index(row))]


def _what_was_tested(ordered: Sequence[ThresholdRow], outcome: Outcome, starts: Sequence[Start],
                     delta: float) -> str:
    """Where each start of delta entered, and where testing stopped (every non-rejection), in words."""
    if not outcome.tested:
        return f"no threshold automates the minimum {starts[0].min_automated} predictions needed to test it"
    failed = [(i, level) for i, level in zip(outcome.tested, outcome.levels) if i not in outcome.rejected]
    stops = " and at ".join(f"{ordered[i].threshold:.2f}: {ordered[i].n_automated} automated, "
                            f"{ordered[i].n_automated_errors} wrong, p = {ordered[i].p_value:.3g} > {level:.3g}"
                            for i, level in failed)
    result = f"testing stopped at {stops}" if failed else "every tested threshold was rejected"
    if len(starts) == 1:
        return result
    entries = "; ".join(
        f"{start.share:.0%} of {delta:.3g} "
        + (f"unused (no threshold automates {start.min_automated})" if index is None else
           f"from {ordered[index].threshold:.2f} (the strictest threshold automating >= {start.min_automated})")
        for start, index in zip(starts, outcome.start_indices))
    return f"fallback testing from the strictest threshold down, {entries}; {result}"


def _check_minimum(min_automated: int) -> int:
    if not isinstance(min_automated, numbers.Integral) or isinstance(min_automated, bool) or min_automated < 1:
        raise DataError(f"min_automated must be an integer >= 1; got {min_automated!r}")
    return int(min_automated)


def _check_thresholds(thresholds: Sequence[float]) -> np.ndarray:
    grid = np.asarray(thresholds, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or np.any(~np.isfinite(grid)) or np.any((grid < 0) | (grid > 1)):
        raise DataError("thresholds must be a non-empty 1-D list of numbers in [0, 1]")
    if np.any(np.diff(grid) <= 0):
        raise DataError("thresholds must be strictly increasing")
    return grid
