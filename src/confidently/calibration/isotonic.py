"""Isotonic regression: the best non-decreasing map from score to probability."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.isotonic import IsotonicRegression

from confidently.calibration.base import Interval, OneVsRestCalibrator, SmallSampleWarning
from confidently.calibration.numeric import laplace_bounds
from confidently.calibration.state import read_object, read_vector
from confidently.errors import CalibrationError


class IsotonicCalibrator(OneVsRestCalibrator):
    """Isotonic regression of the label on the raw score (Zadrozny & Elkan 2002), centred by default.

    Fits the non-decreasing step function ``f`` minimising ``sum_i (f(s_i) - t_i)^2`` (scikit-learn's
    ``IsotonicRegression`` with ``y_min=0, y_max=1``). A flat step (plateau) gives all its rows one
    probability, the strongest and the weakest alike, so no threshold on the calibrated probability can
    keep one and drop the other, though the raw score orders them. With ``centred`` (centred isotonic
    regression, Oron & Flournoy 2017) each plateau holding both classes becomes one point, at the mean
    score of its rows, and the map runs linearly between the points, so it is strictly increasing
    wherever the labels are mixed. A plateau of one class (only the bottom or the top one can be) keeps
    its first and last score, as the authors' ``cir`` package keeps runs of 0s and 1s out of the
    centring: its rows show no trend to centre, and a ramp from its centre would send some of them, all
    right in the fit, below its own value. Without ``centred`` every plateau keeps its first and last
    score (the step function). Either way the points are stored and applied by linear interpolation,
    constant outside them. Binary tasks use the positive-class probability; more classes are
    one-vs-rest and renormalised.

    A plateau whose ``m`` training rows are all of one class would be fitted to exactly 0 or 1; it is
    pulled in to what ``m`` rows support, ``1 / (m + 2)`` or ``(m + 1) / (m + 2)`` (Laplace's rule of
    succession), but not past its neighbouring plateau, so the map stays non-decreasing. Plateaus
    with both classes keep their observed frequency.

    Isotonic regression has many degrees of freedom and overfits small calibration sets (Niculescu-
    Mizil & Caruana 2005), so ``fit`` warns with :class:`SmallSampleWarning` below
    ``warn_below`` examples.

    Parameters
    ----------
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    warn_below : int, default=1000
        Fit on fewer examples than this warns.
    centred : bool, default=True
        Centred isotonic regression; ``False`` gives the step function. A file saved before this
        parameter existed holds the step function, and loads with ``centred=False``.
    classes : list of str or int, optional
        The label of each probability column (see :class:`~confidently.calibration.base.SupervisedCalibrator`).

    Attributes
    ----------
    maps_ : list of dict
        Per score column ``{"x": points, "y": values}``, both non-decreasing arrays (``x`` in
        [0, 1], ``y`` in (0, 1)).

    References
    ----------
    Oron, A. P. & Flournoy, N. (2017). Centered isotonic regression: point and interval estimation for
    dose-response studies. Statistics in Biopharmaceutical Research 9(3), 258-267.
    """

    name = "isotonic"
    _constraints: ClassVar[dict[str, Interval]] = {
        **OneVsRestCalibrator._constraints, "warn_below": Interval(int, 0),
    }

    def __init__(self, *, min_samples: int = 20, warn_below: int = 1000, centred: bool = True,
                 classes: list[str] | list[int] | None = None):
        super().__init__(min_samples=min_samples, classes=classes)
        self.warn_below = warn_below
        self.centred = centred

    def _validate_params(self) -> None:
        super()._validate_params()
        if not isinstance(self.centred, bool):
            raise CalibrationError(f"IsotonicCalibrator: centred must be true or false; got {self.centred!r}")

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        # files written before centring existed hold the step function
        return {"centred": False, **params}

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
        fitted = model.predict(score)
        if not self.centred:
            return {"x": model.X_thresholds_, "y": _bound_pure_plateaus(model.y_thresholds_, fitted)}
        # the fit is monotone, so the rows of one fitted value are one plateau (a run of scores)
        values, plateau = np.unique(fitted, return_inverse=True)
        centre = np.bincount(plateau, weights=score) / np.bincount(plateau)
        first, last = np.full(values.size, np.inf), np.full(values.size, -np.inf)
        np.minimum.at(first, plateau, score)
        np.maximum.at(last, plateau, score)
        pure = (values == 0.0) | (values == 1.0)
        # two points a plateau: a pure one's first and last score, a mixed one's centre twice; the
        # repeats (and a pure plateau of one score) are dropped, so x is strictly increasing
        x = np.column_stack([np.where(pure, first, centre), np.where(pure, last, centre)]).ravel()
        y = np.repeat(_bound_pure_plateaus(values, fitted), 2)
        keep = np.r_[True, np.diff(x) > 0]
        return {"x": x[keep], "y": y[keep]}

    def _apply_map(self, params: Mapping[str, Any], score: np.ndarray) -> np.ndarray:
        # np.interp is what IsotonicRegression.predict does (linear between thresholds, clipped
        # outside), so the saved points alone reproduce the fitted map, centred or not.
        return np.interp(score, params["x"], params["y"])

    def _read_map(self, value: Any, where: str) -> dict[str, Any]:
        fitted = read_object(value, where, ("x", "y"))
        x = read_vector(fitted["x"], f"{where}.x", low=0.0, high=1.0, order="non-decreasing")
        y = read_vector(fitted["y"], f"{where}.y", length=x.size, low=0.0, high=1.0, order="non-decreasing")
        return {"x": x, "y": y}


def _bound_pure_plateaus(values: np.ndarray, fitted_on_training: np.ndarray) -> np.ndarray:
    """Pull the plateaus fitted to exactly 0 or 1 in to Laplace's bound for their row count.

    ``values`` are the map's values at its points (non-decreasing), ``fitted_on_training`` the fitted value of
    each training row (which lies on a plateau, so rows at exactly 0 or 1 count that plateau's rows).
    """
    values = values.astype(float)
    pure_low, pure_high = values == 0.0, values == 1.0
    mixed = values[~(pure_low | pure_high)]
    if pure_high.any():
        _, high = laplace_bounds(np.count_nonzero(fitted_on_training == 1.0))
        # not below the highest mixed plateau, so the map stays non-decreasing
        values[pure_high] = max(float(high), float(mixed.max())) if mixed.size else float(high)
    if pure_low.any():
        low, _ = laplace_bounds(np.count_nonzero(fitted_on_training == 0.0))
        values[pure_low] = min(float(low), float(mixed.min())) if mixed.size else float(low)
    return values
