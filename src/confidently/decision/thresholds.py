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

:class:`DecisionPolicy` stores the chosen threshold, with its guarantee in words, and applies it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import betaincinv
from scipy.stats import binom

from confidently.calibration.validation import check_confidence, check_correct
from confidently.errors import ArtifactError, DataError
from confidently.files import atomic_write_json, check_format, read_artifact
from confidently.metrics import bootstrap_ci

POLICY_FORMAT = "confidently.policy"
POLICY_FORMAT_VERSION = 1


def threshold_grid(start: float = 0.50, stop: float = 0.99, step: float = 0.01) -> np.ndarray:
    """Thresholds ``start, start + step, ..., stop`` (inclusive), rounded to 10 decimals.

    Rounding makes 0.7 the float ``0.7`` rather than ``0.7000000000000001``, so that a confidence of
    exactly 0.7 is automated at threshold 0.7.
    """
    if not (0.0 <= start <= stop <= 1.0 and step > 0):
        raise DataError(f"need 0 <= start <= stop <= 1 and step > 0; got start={start}, stop={stop}, step={step}")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    return np.round(start + step * np.arange(count), 10)


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
    _check_target(target_accuracy)
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
    _check_target(target_accuracy)
    _check_level(level)
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
        return {key: _nan_to_none(value) for key, value in asdict(self).items()}


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
        return {**{key: _nan_to_none(value) for key, value in asdict(self).items()}, "certified": self.certified,
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
    _check_target(target_accuracy)
    _check_level(level)

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


def _check_target(target_accuracy: float) -> None:
    if not (isinstance(target_accuracy, numbers.Real) and 0.0 < target_accuracy <= 1.0):
        raise DataError(f"target_accuracy must be in (0, 1]; got {target_accuracy!r}")


def _check_level(level: float) -> None:
    if not (isinstance(level, numbers.Real) and 0.0 < level < 1.0):
        raise DataError(f"level must be in (0, 1); got {level!r}")


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


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


@dataclass(frozen=True)
class VolumeProjection:
    """What a decision rule measured on labelled rows means for ``volume`` new items.

    Every count is the measured share times ``volume``, with a two-sided ``level`` interval: exact
    (Clopper–Pearson) for the automated, reviewed and automated-error shares, percentile bootstrap
    for the cost (a weighted sum of both shares).

    Attributes
    ----------
    volume, n : int
        Items projected, and labelled rows measured.
    minutes_per_review, review_cost, error_cost, level : float
    automated, reviewed, errors, review_hours, cost : tuple of (value, low, high)
        Items automated; items sent to review; automated mistakes; hours of review at
        ``minutes_per_review``; ``review_cost * reviewed + error_cost * errors``.
    """

    volume: int
    n: int
    minutes_per_review: float
    review_cost: float
    error_cost: float
    level: float
    automated: tuple[float, float, float]
    reviewed: tuple[float, float, float]
    errors: tuple[float, float, float]
    review_hours: tuple[float, float, float]
    cost: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        out = {key: getattr(self, key) for key in ("volume", "n", "minutes_per_review", "review_cost", "error_cost",
                                                      "level")}
        for key in ("automated", "reviewed", "errors", "review_hours", "cost"):
            value, low, high = getattr(self, key)
            out[key] = {"value": value, "ci_low": _nan_to_none(low), "ci_high": _nan_to_none(high)}
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity: ``per {volume} items``, value, low, high."""
        names = {"automated": "automated", "reviewed": "sent to review", "errors": "automated mistakes",
                 "review_hours": f"review hours ({self.minutes_per_review:g} min each)",
                 "cost": f"cost ({self.review_cost:g} per review + {self.error_cost:g} per mistake)"}
        return pd.DataFrame([{f"per {self.volume:,} items": label, "value": getattr(self, key)[0],
                              f"{self.level:.0%} low": getattr(self, key)[1],
                              f"{self.level:.0%} high": getattr(self, key)[2]} for key, label in names.items()])


def project_volume(
    automate: ArrayLike,
    correct: ArrayLike,
    *,
    volume: int = 10_000,
    minutes_per_review: float = 2.0,
    review_cost: float = 1.0,
    error_cost: float = 10.0,
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> VolumeProjection:
    """Project automated, reviewed, mistakes, review hours and cost onto ``volume`` items.

    Parameters
    ----------
    automate, correct : array-like of bool, shape (n_samples,)
        The decision on each labelled row (measured on data the rule was not chosen on) and whether
        its prediction is right.
    volume : int, default=10000
    minutes_per_review : float, default=2.0
        Time a person spends on one reviewed item (set your own).
    review_cost, error_cost : float
        As in :func:`analyse_thresholds`.
    """
    auto = np.asarray(automate)
    auto = check_correct(auto, n_samples=auto.shape[0] if auto.ndim else 0, name="automate")
    hits = check_correct(correct, n_samples=auto.size)
    if auto.size == 0:
        raise DataError("no rows to project from")
    for name, value in (("volume", volume), ("minutes_per_review", minutes_per_review)):
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
            raise DataError(f"{name} must be a number > 0; got {value!r}")
    n = auto.size
    mistakes = auto & ~hits

    def scaled(count: int, factor: float = 1.0) -> tuple[float, float, float]:
        low, high = clopper_pearson_interval(count, n, level)
        return (volume * count / n * factor, volume * low * factor, volume * high * factor)

    reviewed = scaled(int(n - auto.sum()))
    per_row_cost = review_cost * (~auto) + error_cost * mistakes
    interval = bootstrap_ci(lambda c: c.mean(axis=-1), per_row_cost.astype(float), n_resamples=n_resamples,
                            seed=seed, level=level)
    return VolumeProjection(
        volume=int(volume), n=n, minutes_per_review=float(minutes_per_review), review_cost=float(review_cost),
        error_cost=float(error_cost), level=float(level), automated=scaled(int(auto.sum())), reviewed=reviewed,
        errors=scaled(int(mistakes.sum())), review_hours=tuple(v * minutes_per_review / 60 for v in reviewed),
        cost=(volume * float(per_row_cost.mean()), volume * interval.low, volume * interval.high))


@dataclass(frozen=True)
class DecisionPolicy:
    """Automate a prediction when its calibrated confidence is >= ``threshold``; review the rest.

    Attributes
    ----------
    threshold : float or None
        ``None`` reviews everything (no threshold could be certified).
    target_accuracy : float or None
        The accuracy the threshold was certified for, if any.
    certified : bool
        Whether ``threshold`` comes from a Learn-Then-Test certificate.
    method : str
        How the threshold was chosen, in words (stored with the policy for the audit trail).
    level : float or None
        Confidence ``1 - delta`` of the certificate (None for an uncertified threshold, and in policies
        written before it was recorded, which still load).
    """

    threshold: float | None
    target_accuracy: float | None
    certified: bool
    method: str
    level: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not (
            isinstance(self.threshold, numbers.Real) and not isinstance(self.threshold, bool)
            and 0.0 <= self.threshold <= 1.0
        ):
            raise DataError(f"threshold must be a number in [0, 1] or None; got {self.threshold!r}")
        if self.target_accuracy is not None and not (
            isinstance(self.target_accuracy, numbers.Real) and not isinstance(self.target_accuracy, bool)
            and 0.0 < self.target_accuracy <= 1.0
        ):
            raise DataError(f"target_accuracy must be in (0, 1] or None; got {self.target_accuracy!r}")
        if self.level is not None and not (isinstance(self.level, numbers.Real) and 0.0 < self.level < 1.0):
            raise DataError(f"level must be in (0, 1) or None; got {self.level!r}")
        if not isinstance(self.certified, bool) or not isinstance(self.method, str):
            raise DataError("certified must be a bool and method a string")

    @property
    def guarantee(self) -> str:
        """What the policy promises, in words (written into the policy file beside the fields)."""
        if self.certified and self.threshold is not None and self.target_accuracy is not None:
            if self.level is None:
                return (f"automated predictions certified {self.target_accuracy:.0%} accurate by an older rule "
                        "that did not record its confidence level")
            return guarantee_text(self.target_accuracy, self.level, certified=True)
        if self.threshold is None:
            if self.target_accuracy is not None and self.level is not None:
                return guarantee_text(self.target_accuracy, self.level, certified=False)
            return "no threshold: every prediction goes to review"
        return f"not certified: automates at confidence >= {self.threshold:.2f} with no accuracy guarantee"

    @classmethod
    def from_certificate(cls, certificate: CertifiedThreshold) -> DecisionPolicy:
        """A policy applying a certified threshold (reviewing everything when none qualified)."""
        return cls(
            threshold=certificate.threshold,
            target_accuracy=certificate.target_accuracy,
            certified=certificate.certified,
            method=("Learn-Then-Test fixed-sequence testing from the strictest threshold down, exact binomial "
                    f"p-values (one-sided {certificate.level:.0%} Clopper-Pearson), thresholds automating fewer "
                    f"than {certificate.min_automated} skipped: {certificate.reason}"),
            level=certificate.level,
        )

    @classmethod
    def from_cost(cls, analysis: ThresholdAnalysis) -> DecisionPolicy:
        """A policy applying the cost-optimal threshold of ``analysis`` (not certified)."""
        row = analysis.optimal
        return cls(
            threshold=row.threshold,
            target_accuracy=None,
            certified=False,
            method=f"minimum of {analysis.review_cost:g} x reviews + {analysis.error_cost:g} x automated "
            f"errors over {len(analysis.rows)} thresholds: {row.cost_per_item:.4g} per item at {row.threshold:.2f}",
        )

    def decide(self, confidence: ArrayLike) -> np.ndarray:
        """``"automate"`` where confidence >= threshold, else ``"review"``; an array of str."""
        conf = check_confidence(confidence)
        if self.threshold is None:
            return np.full(conf.shape, "review")
        return np.where(conf >= self.threshold, "automate", "review")

    def to_dict(self) -> dict[str, Any]:
        return {"format": POLICY_FORMAT, "format_version": POLICY_FORMAT_VERSION, **asdict(self),
                "guarantee": self.guarantee}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionPolicy:
        """Rebuild a policy from :meth:`to_dict`; malformed input raises :class:`ArtifactError`."""
        check_format(data, format=POLICY_FORMAT, version=POLICY_FORMAT_VERSION, what="decision policy")
        try:
            return cls(**{key: data[key] for key in ("threshold", "target_accuracy", "certified", "method")},
                       level=data.get("level"))
        except (KeyError, DataError) as error:
            raise ArtifactError(f"malformed decision policy: {error}") from None

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DecisionPolicy:
        return read_artifact(path, cls.from_dict)
