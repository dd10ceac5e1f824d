"""What a decision rule measured on labelled rows means for a volume of new items: automated,
reviewed, mistakes, review hours and cost, each with an interval."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_correct
from confidently.decision.binomial import clopper_pearson_interval
from confidently.errors import DataError
from confidently.metrics import bootstrap_ci
from confidently.metrics.results import jsonable


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
            out[key] = {"value": value, "ci_low": jsonable(low), "ci_high": jsonable(high)}
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
