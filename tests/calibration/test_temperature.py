import numpy as np
import pytest

from synthetic import SHARPEN, make_split
from confidently.calibration import TemperatureCalibrator
from confidently.errors import CalibrationError


@pytest.mark.parametrize("k", [2, 3])
def test_temperature_recovers_a_known_temperature_within_5_percent(k):
    data = make_split(k, n=20000, seed=7)
    calibrator = TemperatureCalibrator().fit(data.train_probs, data.train_y)
    assert abs(calibrator.temperature_ - SHARPEN) < 0.05 * SHARPEN


def test_temperature_keeps_the_predicted_class(multiclass):
    calibrator = TemperatureCalibrator().fit(multiclass.train_probs, multiclass.train_y)
    out = calibrator.predict_proba(multiclass.test_probs)
    np.testing.assert_array_equal(out.argmax(axis=1), multiclass.test_probs.argmax(axis=1))


def test_temperature_one_on_calibrated_scores():
    data = make_split(3, n=20000, seed=8)
    calibrated = np.exp(np.log(data.train_probs) / SHARPEN)
    calibrated /= calibrated.sum(axis=1, keepdims=True)
    assert abs(TemperatureCalibrator().fit(calibrated, data.train_y).temperature_ - 1.0) < 0.05


def test_temperature_search_range_must_be_ordered(binary):
    with pytest.raises(CalibrationError, match="min_temperature .* must be below max_temperature"):
        TemperatureCalibrator(min_temperature=5.0, max_temperature=2.0).fit(binary.train_probs, binary.train_y)
