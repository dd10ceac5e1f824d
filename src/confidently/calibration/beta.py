"""Beta calibration: a three-parameter family that contains the identity map."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit

from confidently.calibration.base import OneVsRestCalibrator
from confidently.calibration.numeric import EPS, fit_logistic
from confidently.calibration.state import read_object, read_real


class BetaCalibrator(OneVsRestCalibrator):
    """Beta calibration (Kull, Silva Filho & Flach 2017).

    .. math::
        q = \\sigma\\big(a \\ln s - b \\ln(1 - s) + c\\big), \\quad a, b \\ge 0

    i.e. a logistic regression on the two features ``[ln s, -ln(1 - s)]``. Unlike Platt scaling on
    the log-odds, the family includes the identity (``a = b = 1, c = 0``) and maps that are not
    sigmoid-shaped. The constraint ``a, b >= 0`` (a non-decreasing map) is handled as in the
    paper's reference implementation (``betacal``): fit both features; if ``a < 0`` refit on
    ``-ln(1 - s)`` alone with ``a = 0``, else if ``b < 0`` refit on ``ln s`` alone with ``b = 0``.
    Binary tasks use the positive-class probability; more classes are one-vs-rest and renormalised.
    ``s`` is clipped to ``[1e-12, 1 - 1e-12]``.

    Parameters
    ----------
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    classes : list of str or int, optional
        The label of each probability column (see :class:`~confidently.calibration.base.SupervisedCalibrator`).

    Attributes
    ----------
    maps_ : list of dict
        Per score column ``{"a": a, "b": b, "c": c}``.

    References
    ----------
    Kull, M., Silva Filho, T. M. & Flach, P. (2017). Beta calibration: a well-founded and easily
    implemented improvement on logistic calibration for binary classifiers. AISTATS.
    """

    name = "beta"
    _map_keys: ClassVar[tuple[str, ...]] = ("a", "b", "c")

    def _fit_map(self, score: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        features = _features(score)
        (a, b), c = fit_logistic(features, target)
        if a < 0:
            (b,), c = fit_logistic(features[:, 1:], target)
            a = 0.0
        elif b < 0:
            (a,), c = fit_logistic(features[:, :1], target)
            b = 0.0
        return {"a": float(a), "b": float(b), "c": c}

    def _apply_map(self, params: Mapping[str, Any], score: np.ndarray) -> np.ndarray:
        return expit(_features(score) @ np.array([params["a"], params["b"]]) + params["c"])

    def _read_map(self, value: Any, where: str) -> dict[str, Any]:
        fitted = read_object(value, where, self._map_keys)
        # a, b >= 0 keep the map non-decreasing, as fit guarantees
        return {"a": read_real(fitted["a"], f"{where}.a", low=0.0), "b": read_real(fitted["b"], f"{where}.b", low=0.0),
                "c": read_real(fitted["c"], f"{where}.c")}


def _features(score: np.ndarray) -> np.ndarray:
    s = np.clip(score, EPS, 1.0 - EPS)
    return np.column_stack([np.log(s), -np.log1p(-s)])
