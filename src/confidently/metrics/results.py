"""What the metrics return: results with their intervals, reliability tables and risk–coverage curves.

Every value is JSON-able through ``to_dict`` (NaN becomes None). The interval methods are
described in :mod:`confidently.metrics.bootstrap`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

BinningScheme = Literal["equal_width", "equal_mass"]
BatchMetric = Callable[..., np.ndarray]
IntervalMethod = Literal["percentile", "bias_corrected"]

#: How each kind of interval is formed, in words (reports quote this).
INTERVAL_METHODS: dict[str, str] = {
    "percentile": "value = the metric on the sample; interval = the 2.5th and 97.5th percentiles of the "
                  "metric over bootstrap resamples of the rows, re-centred so that their median is the "
                  "sample value (used for unbiased estimators, where the two agree up to Monte-Carlo noise)",
    "bias_corrected": "value = bootstrap bias-corrected estimate θ̂ − (median of resamples − plug-in on the "
                      "sample); interval = basic bootstrap interval reflected about the sample value, both "
                      "clipped to [0, 1]. Used for binned calibration errors, whose sample value is biased "
                      "upwards and whose plain percentile interval can exclude it",
}


def jsonable(value: Any) -> Any:
    """NaN becomes None (JSON has no NaN); arrays become lists."""
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class MetricResult:
    """One metric on one set of predictions.

    Attributes
    ----------
    name : str
        Short key, e.g. ``"ece"``.
    value : float
        The point estimate, always inside ``[ci_low, ci_high]`` (NaN when undefined; ``note`` says
        why). For bias-corrected metrics it is the bias-corrected estimate; otherwise, and whenever
        ``n_resamples`` is 0, it equals ``sample_value``.
    definition : str
        The formula and its parameters (bins, binning scheme), so the number can be reproduced.
    n : int
        Number of examples.
    ci_low, ci_high : float
        Bootstrap interval at ``ci_level`` (NaN when ``n_resamples`` is 0).
    ci_level : float
        Coverage of the interval, 0.95 by default.
    n_resamples, seed : int
        Bootstrap resamples and the seed of their indices.
    sample_value : float
        ``definition`` applied to the rows themselves, before any bias correction.
    interval : {"percentile", "bias_corrected"}
        How the value and interval were formed (see :data:`INTERVAL_METHODS`).
    note : str
        Anything the reader must know to interpret the value; empty when nothing.
    """

    name: str
    value: float
    definition: str
    n: int
    ci_low: float
    ci_high: float
    ci_level: float
    n_resamples: int
    seed: int
    sample_value: float
    interval: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {key: jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class BootstrapInterval:
    """A bootstrap interval and the estimate it contains (resamples where the metric is undefined
    are left out).

    ``method`` is ``"percentile"`` (the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the
    metric over resamples; ``estimate`` is the metric on the sample) or ``"bias_corrected"`` (see
    :data:`INTERVAL_METHODS`).
    """

    low: float
    high: float
    level: float
    n_resamples: int
    seed: int
    estimate: float
    method: str


@dataclass(frozen=True)
class PairedDifference:
    """``metric(a) - metric(b)`` on the same rows, with a paired-bootstrap interval.

    Both sides are evaluated on the same resampled row indices in every resample, so the interval
    reflects only how the two differ, not how hard the rows are. If the interval excludes 0 the
    difference is significant at level ``1 - level`` (two-sided). ``diff`` is inside the interval;
    for a bias-corrected metric it is the bias-corrected difference, and ``sample_diff`` the
    difference on the rows themselves.
    """

    diff: float
    ci_low: float
    ci_high: float
    level: float
    n: int
    n_resamples: int
    seed: int
    sample_diff: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {key: jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of confidence against accuracy (the data of a reliability diagram).

    Attributes
    ----------
    lower, upper : ndarray of shape (n_bins,)
        Bin bounds: the fixed edges ``[b/B, (b+1)/B)`` for equal-width bins (the last bin includes
        1); the smallest and largest confidence in the bin for equal-mass bins (NaN when empty).
    count : ndarray of shape (n_bins,)
        Examples per bin.
    mean_confidence, accuracy : ndarray of shape (n_bins,)
        Mean confidence and fraction correct per bin (NaN when empty).
    n_bins : int
    scheme : {"equal_width", "equal_mass"}
    n : int
        Total examples.
    """

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    mean_confidence: np.ndarray
    accuracy: np.ndarray
    n_bins: int
    scheme: str
    n: int

    @property
    def ece(self) -> float:
        """``Σ_b (n_b/n)·|acc_b − conf_b|``: the same number :func:`expected_calibration_error` gives."""
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.mean_confidence[filled])
        return float(np.sum(self.count[filled] * gaps) / self.n)

    def to_dict(self) -> dict[str, Any]:
        return {**{key: jsonable(value) for key, value in asdict(self).items()}, "ece": self.ece}


@dataclass(frozen=True)
class RiskCoverageCurve:
    """Selective risk against coverage when only examples with confidence >= threshold are kept.

    One point per distinct confidence, from the highest threshold (lowest coverage) down.

    Attributes
    ----------
    threshold : ndarray
        The confidence thresholds, decreasing.
    coverage : ndarray
        Fraction of examples with confidence >= threshold.
    risk : ndarray
        Error rate among those examples.
    """

    threshold: np.ndarray
    coverage: np.ndarray
    risk: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {key: jsonable(value) for key, value in asdict(self).items()}
