"""Isotonic regression: the best non-decreasing map from score to probability."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.isotonic import IsotonicRegression

from confidently.calibration.base import Interval, OneVsRestCalibrator, SmallSampleWarning


class IsotonicCalibrator(OneVsRestCalibrator):
    """Isotonic regression of the label on the raw score (Zadrozny & Elkan 2002).

    Fits the non-decreasing step function ``f`` minimising ``sum_i (f(s_i) - t_i)^2`` (scikit-learn's
    ``IsotonicRegression`` with ``y_min=0, y_max=1, out_of_bounds="clip"``), stored as its threshold
    points and applied by linear interpolation between them, constant outside them. Binary tasks use
    the positive-class probability; more classes are one-vs-rest and renormalised.

    Isotonic regression has many degrees of freedom and overfits small calibration sets (Niculescu-
    Mizil & Caruana 2005), so ``fit`` warns with :class:`SmallSampleWarning` below
    ``warn_below`` examples.

    Parameters
    ----------
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    warn_below : int, default=1000
        Fit on fewer examples than this warns.

    Attributes
    ----------
    maps_ : list of dict
        Per score column ``{"x": thresholds, "y": values}``, both non-decreasing arrays.
    """

    name = "isotonic"
    _constraints: ClassVar[dict[str, Interval]] = {
        **OneVsRestCalibrator._constraints, "warn_below": Interval(int, 0),
    }

    def __init__(self, *, min_samples: int = 20, warn_below: int = 1000):
        super().__init__(min_samples=min_samples)
        self.warn_below = warn_below

    def _fit(self, probs: np.ndarray, y: np.ndarray) -> None:
        if y.size < self.warn_below:
            warnings.warn(
                f"isotonic calibration fitted on {y.size} examples (< {self.warn_below}) tends to "
                "overfit; prefer platt, beta or temperature scaling for small calibration sets",
                SmallSampleWarning,
                stacklevel=3,
            )
        super()._fit(probs, y)

    def _fit_map(self, score: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        model.fit(score, target)
        return {"x": model.X_thresholds_, "y": model.y_thresholds_}

    def _apply_map(self, params: Mapping[str, Any], score: np.ndarray) -> np.ndarray:
        # np.interp is what IsotonicRegression.predict does (linear between thresholds, clipped
        # outside), so the saved thresholds alone reproduce the fitted model.
        return np.interp(score, params["x"], params["y"])
