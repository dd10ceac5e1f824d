"""Temperature scaling: one scalar that softens or sharpens every prediction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from confidently.calibration.base import Interval, SupervisedCalibrator
from confidently.calibration.numeric import safe_log
from confidently.calibration.state import read_real
from confidently.errors import CalibrationError


class TemperatureCalibrator(SupervisedCalibrator):
    """Temperature scaling on the log class masses (Guo et al. 2017).

    .. math::
        q = \\operatorname{softmax}(\\ln p / T)

    ``T`` minimises the negative log-likelihood ``-(1/n) sum_i ln q_{i, y_i}``; the search runs over
    ``ln T`` in ``[ln min_temperature, ln max_temperature]`` (bounded Brent,
    ``scipy.optimize.minimize_scalar``). ``T > 1`` softens over-confident scores. It never changes
    the predicted class. ``p`` is clipped to ``>= 1e-12`` before the log.

    Parameters
    ----------
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    min_temperature, max_temperature : float, default=0.01, 100.0
        Search range of ``T``.
    classes : list of str or int, optional
        The label of each probability column (see :class:`~confidently.calibration.base.SupervisedCalibrator`).

    Attributes
    ----------
    temperature_ : float
        The fitted ``T``.
    """

    name = "temperature"
    _constraints: ClassVar[dict[str, Interval]] = {
        **SupervisedCalibrator._constraints,
        "min_temperature": Interval(float, 1e-6),
        "max_temperature": Interval(float, 1e-6),
    }

    def __init__(self, *, min_samples: int = 20, min_temperature: float = 0.01, max_temperature: float = 100.0,
                 classes: list[str] | list[int] | None = None):
        super().__init__(min_samples=min_samples, classes=classes)
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature

    def _validate_params(self) -> None:
        super()._validate_params()
        if not self.min_temperature < self.max_temperature:
            raise CalibrationError(
                f"TemperatureCalibrator: min_temperature ({self.min_temperature}) must be below "
                f"max_temperature ({self.max_temperature})"
            )

    def _fit(self, probs: np.ndarray, y: np.ndarray) -> None:
        log_p = safe_log(probs)
        rows = np.arange(y.size)

        def nll(log_t: float) -> float:
            scaled = log_p / np.exp(log_t)
            return float(np.mean(-log_softmax(scaled, axis=1)[rows, y]))

        result = minimize_scalar(
            nll,
            bounds=(np.log(self.min_temperature), np.log(self.max_temperature)),
            method="bounded",
            options={"xatol": 1e-7},
        )
        self.temperature_ = float(np.exp(result.x))

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        return softmax(safe_log(probs) / self.temperature_, axis=1)

    def _read_state(self, state: Mapping[str, Any], where: str) -> set[str]:
        self.temperature_ = read_real(state.get("temperature_"), f"{where}.temperature_", positive=True)
        return {"temperature_"}
