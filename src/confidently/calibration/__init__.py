"""Calibrators: map a model's raw class probabilities to probabilities that can be trusted.

Supervised methods (fitted on labelled rows): :class:`PlattCalibrator`, :class:`IsotonicCalibrator`,
:class:`TemperatureCalibrator`, :class:`HistogramBinningCalibrator`, :class:`BetaCalibrator`,
:class:`DirichletCalibrator` (one joint map of all classes).
Label-free corrections: :class:`ContextualCalibrator` (fitted on content-free inputs) and
:class:`BatchCalibrator` (fitted on unlabelled rows). :class:`StackedCalibrator` chains them.
Every one is a scikit-learn classifier whose features are raw class probabilities: ``fit(probs, y) ->
self`` (``y`` column indices or labels such as strings; ``classes_`` learned), ``predict_proba(probs)``
(never exactly 0 or 1), ``predict``, ``clone``/``get_params``/``set_params``, and JSON
``to_dict``/``save``; :func:`load_calibrator` reads any of them back, checking every value.
"""

from confidently.calibration.base import (
    CalibrationWarning,
    Calibrator,
    CalibratorNotFittedError,
    LabelBiasCalibrator,
    OneVsRestCalibrator,
    SmallSampleWarning,
    SupervisedCalibrator,
    clone,
)
from confidently.calibration.batch import BatchCalibrator
from confidently.calibration.beta import BetaCalibrator
from confidently.calibration.contextual import ContextualCalibrator
from confidently.calibration.crossfit import cross_fit_predict
from confidently.calibration.dirichlet import DirichletCalibrator
from confidently.calibration.histogram import HistogramBinningCalibrator
from confidently.calibration.isotonic import IsotonicCalibrator
from confidently.calibration.platt import PlattCalibrator
from confidently.calibration.registry import CALIBRATORS, calibrator_from_dict, load_calibrator, make_calibrator
from confidently.calibration.stacked import StackedCalibrator
from confidently.calibration.temperature import TemperatureCalibrator

__all__ = [
    "CALIBRATORS",
    "BatchCalibrator",
    "BetaCalibrator",
    "CalibrationWarning",
    "Calibrator",
    "CalibratorNotFittedError",
    "ContextualCalibrator",
    "DirichletCalibrator",
    "HistogramBinningCalibrator",
    "IsotonicCalibrator",
    "LabelBiasCalibrator",
    "OneVsRestCalibrator",
    "PlattCalibrator",
    "SmallSampleWarning",
    "StackedCalibrator",
    "SupervisedCalibrator",
    "TemperatureCalibrator",
    "calibrator_from_dict",
    "clone",
    "cross_fit_predict",
    "load_calibrator",
    "make_calibrator",
]
