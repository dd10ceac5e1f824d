"""From calibrated confidence to decisions: which predictions to automate and which to send to review.

A threshold ``t`` automates every prediction with confidence >= ``t`` and sends the rest to a person.
For a grid of thresholds (0.50 to 0.99 by default) this module counts what is automated, how accurate
it is, and what it costs, and picks two thresholds on labelled calibration data:

* the *cost-optimal* one, minimising ``review_cost * n_review + error_cost * n_automated_errors``;
* the *certified* one, by Learn-Then-Test fixed-sequence testing (Angelopoulos, Bates, Candès, Jordan
  & Lei 2021): for each threshold the null hypothesis "the automated predictions are less accurate
  than ``target_accuracy``" gets the exact binomial p-value ``P(Bin(n_automated, 1 - target) <=
  errors)``; thresholds are tested from the strictest down, and testing stops at the first one not
  rejected at ``delta = 1 - level``. The certified threshold is the last one rejected. Because the
  order is fixed before the data are seen, the chance that the certified threshold's accuracy on new
  data is below the target is at most ``delta`` with no correction for the number of thresholds.

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
from confidently.decision.binomial import (binomial_p_value, check_level, check_target, clopper_pearson_lower,
                                           min_automated_for)
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
    """The threshold certified by fixed-sequence testing, or ``threshold=None``.

    Attributes
    ----------
    threshold : float or None
        ``None`` when not even the first tested threshold is certified: then nothing may be automated.
    target_accuracy, level : float
        The target and the confidence level ``1 - delta`` of the guarantee.
    coverage : float
        Share of predictions automated at that threshold (0 when none qualifies).
    n_automated : int
    accuracy, accuracy_lower_bound, p_value : float
        Observed accuracy, its one-sided Clopper–Pearson lower bound and the binomial p-value at that
        threshold (NaN when none qualifies).
    min_automated : int
        Thresholds automating fewer predictions were skipped (:func:`min_automated_for`).
    n_tested : int
        Thresholds tested before the sequence stopped (the failed one included).
    reason : str
        One sentence saying what was found, and where and why the sequence stopped.
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
) -> ThresholdMeasurement:
    """Automation, accuracy and cost at each threshold, choosing none (use it on a test split).

    Parameters are as in :func:`analyse_thresholds`.
    """
    conf = check_confidence(confidence)
    hits = check_correct(correct, n_samples=conf.size)
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
        Skip thresholds automating fewer predictions; default :func:`min_automated_for`.

    Notes
    -----
    The guarantee: with probability at least ``level`` over the draw of these rows, the accuracy of
    predictions automated at the certified threshold, on new data from the same distribution, is at
    least ``target_accuracy``. It needs the confidences to come from a score function fixed without
    these rows (a calibrator fitted elsewhere, or cross-fitted). The minimum-count rule looks only at
    how many confidences pass each threshold, never at which predictions are right.
    """
    measured = measure_thresholds(confidence, correct, thresholds=thresholds, review_cost=review_cost,
                                  error_cost=error_cost, target_accuracy=target_accuracy, level=level)
    minimum = min_automated_for(target_accuracy, level) if min_automated is None else _check_minimum(min_automated)
    costs = [row.cost for row in measured.rows]
    return ThresholdAnalysis(**{f.name: getattr(measured, f.name) for f in fields(ThresholdMeasurement)},
                             optimal=measured.rows[int(np.argmin(costs))],
                             certified=_certify(measured.rows, target_accuracy, level, minimum))


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
) -> CertifiedThreshold:
    """The Learn-Then-Test certified threshold on calibration data (see :func:`analyse_thresholds`)."""
    return analyse_thresholds(confidence, correct, thresholds=thresholds, target_accuracy=target_accuracy,
                              level=level, min_automated=min_automated).certified


def _certify(rows: Sequence[ThresholdRow], target: float, level: float, minimum: int) -> CertifiedThreshold:
    """Fixed-sequence testing from the strictest threshold down; stop at the first non-rejection."""
    delta = 1.0 - level
    chosen: ThresholdRow | None = None
    stopped: ThresholdRow | None = None
    n_tested = 0
    for row in reversed(rows):
        if row.n_automated < minimum:
            continue  # too few to test; counts only grow further down, so these are the strictest ones
        n_tested += 1
        if row.p_value <= delta:
            chosen = row
        else:
            stopped = row
            break
    if stopped is None:
        where = "every tested threshold was rejected" if n_tested else (
            f"no threshold automates the minimum {minimum} predictions needed to test it")
    else:
        where = (f"testing stopped at {stopped.threshold:.2f}: {stopped.n_automated} automated, "
                 f"{stopped.n_automated_errors} wrong, p = {stopped.p_value:.3g} > {delta:.3g}")
    common = {"target_accuracy": target, "level": level, "min_automated": minimum, "n_tested": n_tested}
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
                f"{chosen.accuracy:.1%} correct (p = {chosen.p_value:.3g} <= {delta:.3g}; {level:.0%} lower bound "
                f"{chosen.accuracy_lower_bound:.1%}); {where}"),
    )


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
