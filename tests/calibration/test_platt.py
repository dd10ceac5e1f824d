import numpy as np
from scipy.special import expit

from synthetic import SHARPEN, make_split
from confidently.calibration import PlattCalibrator


def test_binary_platt_recovers_the_known_slope(binary):
    # raw log-odds are SHARPEN times the true ones, so the fitted slope is 1 / SHARPEN
    calibrator = PlattCalibrator().fit(binary.train_probs, binary.train_y)
    (fitted,) = calibrator.maps_
    assert abs(fitted["a"] - 1 / SHARPEN) < 0.05 * (1 / SHARPEN)
    assert abs(fitted["b"]) < 0.1


def test_binary_platt_is_a_sigmoid_of_the_raw_log_odds(binary):
    calibrator = PlattCalibrator().fit(binary.train_probs, binary.train_y)
    a, b = calibrator.maps_[0]["a"], calibrator.maps_[0]["b"]
    p = binary.test_probs[:, 1]
    expected = expit(a * np.log(p / (1 - p)) + b)
    np.testing.assert_allclose(calibrator.predict_proba(binary.test_probs)[:, 1], expected, rtol=1e-9)


def test_platt_handles_probabilities_of_exactly_zero_and_one():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]] * 20)
    y = np.array([0, 1] * 20)
    out = PlattCalibrator().fit(probs, y).predict_proba(probs)
    assert np.all(np.isfinite(out))
    # separable data: Platt's smoothed targets keep the answer short of 0 and 1
    assert 0.9 < out[1, 1] < 1.0


def test_multiclass_platt_is_vector_scaling_recovering_the_known_scale():
    data = make_split(3, seed=4)
    calibrator = PlattCalibrator().fit(data.train_probs, data.train_y)
    np.testing.assert_allclose(calibrator.coef_, 1 / SHARPEN, rtol=0.1)
    assert np.all(np.abs(calibrator.intercept_) < 0.1)
