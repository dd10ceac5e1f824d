"""From calibrated confidence to decisions: which predictions to automate and which to send to review.

A threshold ``t`` automates every prediction with confidence >= ``t`` and sends the rest to a person.
For a grid of thresholds (0.50 to 0.99 by default) this module counts what is automated, how accurate
it is, and what it costs, and picks two thresholds:

* the *cost-optimal* one, minimising ``review_cost * n_review + error_cost * n_automated_errors``;
* the *certified* one, the lowest whose one-sided Clopper–Pearson lower bound on the accuracy of the
  automated predictions reaches ``target_accuracy``.

:class:`DecisionPolicy` stores the chosen threshold beside a calibrator and applies it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import betaincinv

from confidently.files import read_json
from confidently.calibration.validation import check_confidence, check_correct
from confidently.errors import ArtifactError, DataError
from confidently.files import atomic_write_json

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
    n_automated_errors: int
    n_review: int
    cost: float
    cost_per_item: float

    def to_dict(self) -> dict[str, Any]:
        return {key: _nan_to_none(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class CertifiedThreshold:
    """The lowest threshold whose accuracy lower bound meets the target, or ``threshold=None``.

    Attributes
    ----------
    threshold : float or None
        ``None`` when no threshold of the grid qualifies: then nothing may be automated.
    target_accuracy, level : float
        The target and the one-sided confidence level of the bound.
    coverage : float
        Share of predictions automated at that threshold (0 when none qualifies).
    n_automated : int
    accuracy, accuracy_lower_bound : float
        Observed accuracy and its lower bound at that threshold (NaN when none qualifies).
    reason : str
        One sentence saying what was found, including the best bound reached when none qualifies.
    """

    threshold: float | None
    target_accuracy: float
    level: float
    coverage: float
    n_automated: int
    accuracy: float
    accuracy_lower_bound: float
    reason: str

    @property
    def certified(self) -> bool:
        return self.threshold is not None

    def to_dict(self) -> dict[str, Any]:
        return {**{key: _nan_to_none(value) for key, value in asdict(self).items()}, "certified": self.certified}


@dataclass(frozen=True)
class ThresholdAnalysis:
    """Every threshold of a grid, the cost-optimal one and the certified one.

    Attributes
    ----------
    rows : tuple of ThresholdRow
        One per threshold, increasing.
    n : int
        Number of predictions analysed.
    review_cost, error_cost : float
        Cost of reviewing one item, and of one automated mistake.
    optimal : ThresholdRow
        Lowest-cost row (the lowest threshold among equal costs, which automates most).
    certified : CertifiedThreshold
    """

    rows: tuple[ThresholdRow, ...]
    n: int
    review_cost: float
    error_cost: float
    optimal: ThresholdRow
    certified: CertifiedThreshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "review_cost": self.review_cost,
            "error_cost": self.error_cost,
            "optimal": self.optimal.to_dict(),
            "certified": self.certified.to_dict(),
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per threshold, columns as in :class:`ThresholdRow`."""
        return pd.DataFrame([asdict(row) for row in self.rows])


def analyse_thresholds(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    thresholds: Sequence[float] | None = None,
    review_cost: float = 1.0,
    error_cost: float = 10.0,
    target_accuracy: float = 0.95,
    level: float = 0.95,
) -> ThresholdAnalysis:
    """Automation, accuracy and cost at each threshold, with the optimal and certified thresholds.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Calibrated top-label confidence.
    correct : array-like of shape (n_samples,)
        Whether each prediction is correct (on labelled data held out from calibration).
    thresholds : sequence of float, optional
        Defaults to :func:`threshold_grid` (0.50 to 0.99 by 0.01).
    review_cost : float, default=1.0
        Cost of sending one prediction to review.
    error_cost : float, default=10.0
        Cost of one automated mistake (the default says a mistake costs ten reviews; set your own).
    target_accuracy : float, default=0.95
        Accuracy the certified threshold must guarantee.
    level : float, default=0.95
        One-sided confidence level of the Clopper–Pearson bound.

    Notes
    -----
    The certificate holds for each threshold separately; choosing the lowest qualifying threshold
    after looking at all of them makes the guarantee for the chosen one slightly weaker than
    ``level`` (the bounds of neighbouring thresholds are strongly dependent, so the loss is small,
    but it is not zero). Use held-out data that did not fit the calibrator.
    """
    conf = check_confidence(confidence)
    hits = check_correct(correct, n_samples=conf.size)
    grid = threshold_grid() if thresholds is None else _check_thresholds(thresholds)
    for name, value in (("review_cost", review_cost), ("error_cost", error_cost)):
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
            raise DataError(f"{name} must be a finite number >= 0; got {value!r}")
    if not 0.0 < target_accuracy <= 1.0:
        raise DataError(f"target_accuracy must be in (0, 1]; got {target_accuracy!r}")

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
    cost = review_cost * first_automated + error_cost * n_errors
    rows = tuple(
        ThresholdRow(
            threshold=float(grid[i]),
            n_automated=int(n_automated[i]),
            coverage=float(n_automated[i] / n),
            accuracy=float(acc[i]),
            accuracy_lower_bound=float(lower[i]),
            n_automated_errors=int(n_errors[i]),
            n_review=int(first_automated[i]),
            cost=float(cost[i]),
            cost_per_item=float(cost[i] / n),
        )
        for i in range(grid.size)
    )
    return ThresholdAnalysis(
        rows=rows,
        n=n,
        review_cost=float(review_cost),
        error_cost=float(error_cost),
        optimal=rows[int(np.argmin(cost))],
        certified=_certify(rows, target_accuracy, level),
    )


def threshold_table(confidence: ArrayLike, correct: ArrayLike, **kwargs: Any) -> pd.DataFrame:
    """:func:`analyse_thresholds` as a DataFrame, one row per threshold (same keyword arguments)."""
    return analyse_thresholds(confidence, correct, **kwargs).to_frame()


def certify_threshold(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    target_accuracy: float = 0.95,
    level: float = 0.95,
    thresholds: Sequence[float] | None = None,
) -> CertifiedThreshold:
    """The lowest threshold whose one-sided ``level`` Clopper–Pearson lower bound on the accuracy
    of the automated predictions is >= ``target_accuracy`` (see :func:`analyse_thresholds`)."""
    return analyse_thresholds(
        confidence, correct, thresholds=thresholds, target_accuracy=target_accuracy, level=level
    ).certified


def _certify(rows: Sequence[ThresholdRow], target: float, level: float) -> CertifiedThreshold:
    for row in rows:
        if row.n_automated > 0 and row.accuracy_lower_bound >= target:
            return CertifiedThreshold(
                threshold=row.threshold, target_accuracy=target, level=level, coverage=row.coverage,
                n_automated=row.n_automated, accuracy=row.accuracy,
                accuracy_lower_bound=row.accuracy_lower_bound,
                reason=(
                    f"at threshold {row.threshold:.2f}, {row.n_automated} automated predictions are "
                    f"{row.accuracy:.1%} correct; the {level:.0%} lower bound {row.accuracy_lower_bound:.1%} "
                    f"meets the target {target:.1%}"
                ),
            )
    bounded = [row for row in rows if row.n_automated > 0]
    if bounded:
        best = max(bounded, key=lambda row: row.accuracy_lower_bound)
        closest = (
            f"; the best {level:.0%} lower bound is {best.accuracy_lower_bound:.1%} at threshold "
            f"{best.threshold:.2f} ({best.n_automated} automated)"
        )
    else:
        closest = "; no prediction reaches the lowest threshold"
    return CertifiedThreshold(
        threshold=None, target_accuracy=target, level=level, coverage=0.0, n_automated=0,
        accuracy=math.nan, accuracy_lower_bound=math.nan,
        reason=(
            f"no threshold from {rows[0].threshold:.2f} to {rows[-1].threshold:.2f} certifies "
            f"{target:.1%} accuracy{closest}; label more data or lower the target"
        ),
    )


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
class DecisionPolicy:
    """Automate a prediction when its calibrated confidence is >= ``threshold``; review the rest.

    Attributes
    ----------
    threshold : float or None
        ``None`` reviews everything (no threshold could be certified).
    target_accuracy : float or None
        The accuracy the threshold was certified for, if any.
    certified : bool
        Whether ``threshold`` comes from a Clopper–Pearson certificate.
    method : str
        How the threshold was chosen, in words (stored with the policy for the audit trail).
    """

    threshold: float | None
    target_accuracy: float | None
    certified: bool
    method: str

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
        if not isinstance(self.certified, bool) or not isinstance(self.method, str):
            raise DataError("certified must be a bool and method a string")

    @classmethod
    def from_certificate(cls, certificate: CertifiedThreshold) -> DecisionPolicy:
        """A policy applying a certified threshold (reviewing everything when none qualified)."""
        return cls(
            threshold=certificate.threshold,
            target_accuracy=certificate.target_accuracy,
            certified=certificate.certified,
            method=f"lowest threshold with one-sided {certificate.level:.0%} Clopper-Pearson lower bound "
            f">= target accuracy: {certificate.reason}",
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
        return {"format": POLICY_FORMAT, "format_version": POLICY_FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionPolicy:
        """Rebuild a policy from :meth:`to_dict`; malformed input raises :class:`ArtifactError`."""
        if not isinstance(data, Mapping) or data.get("format") != POLICY_FORMAT:
            raise ArtifactError(f"not a confidently decision policy: expected format {POLICY_FORMAT!r}")
        if data.get("format_version") != POLICY_FORMAT_VERSION:
            raise ArtifactError(f"decision policy format_version {data.get('format_version')!r} is not supported")
        try:
            return cls(**{key: data[key] for key in ("threshold", "target_accuracy", "certified", "method")})
        except (KeyError, DataError) as error:
            raise ArtifactError(f"malformed decision policy: {error}") from None

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DecisionPolicy:
        data = read_json(path)
        try:
            return cls.from_dict(data)
        except ArtifactError as error:
            raise ArtifactError(f"{path}: {error}") from None
