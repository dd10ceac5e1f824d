import warnings

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from confidently.calibration import CalibrationWarning, IsotonicCalibrator, SmallSampleWarning


def test_isotonic_output_is_monotone_in_the_raw_score(binary):
    calibrator = IsotonicCalibrator().fit(binary.train_probs, binary.train_y)
    grid = np.linspace(0, 1, 2001)
    out = calibrator.predict_proba(np.column_stack([1 - grid, grid]))[:, 1]
    assert np.all(np.diff(out) >= 0)
    assert out[0] < 0.1 and out[-1] > 0.9


def test_isotonic_matches_scikit_learn_including_outside_the_fitted_range(binary):
    calibrator = IsotonicCalibrator().fit(binary.train_probs, binary.train_y)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")
    reference.fit(binary.train_probs[:, 1], binary.train_y)
    grid = np.linspace(0, 1, 501)
    ours = calibrator.predict_proba(np.column_stack([1 - grid, grid]))[:, 1]
    expected = reference.predict(grid)
    # identical wherever scikit-learn's plateaus hold both classes; the pure plateaus (exactly 0 and 1
    # there) and the ramps into them are pulled in to Laplace's bound for their row count
    fitted = reference.predict(binary.train_probs[:, 1])
    mixed = np.unique(fitted[(fitted > 0) & (fitted < 1)])
    inside = (expected >= mixed.min()) & (expected <= mixed.max())
    assert inside.mean() > 0.9
    np.testing.assert_allclose(ours[inside], expected[inside], atol=1e-12)
    n_top, n_bottom = np.count_nonzero(fitted == 1.0), np.count_nonzero(fitted == 0.0)
    assert n_top > 0 and n_bottom > 0  # the fixture has pure plateaus at both ends
    assert ours[-1] == pytest.approx(max((n_top + 1) / (n_top + 2), mixed.max()))
    assert ours[0] == pytest.approx(min(1 / (n_bottom + 2), mixed.min()))
    assert 0 < ours.min() and ours.max() < 1


def test_isotonic_thresholds_are_saved_as_json_arrays(binary):
    state = IsotonicCalibrator().fit(binary.train_probs, binary.train_y).to_dict()["state"]
    (fitted,) = state["maps_"]
    assert isinstance(fitted["x"], list) and isinstance(fitted["y"], list)
    assert len(fitted["x"]) == len(fitted["y"]) > 2


def test_isotonic_warns_when_fitted_on_fewer_than_1000_examples(binary):
    assert issubclass(SmallSampleWarning, CalibrationWarning) and issubclass(CalibrationWarning, UserWarning)
    with pytest.warns(SmallSampleWarning, match="fitted on 999 examples"):
        IsotonicCalibrator().fit(binary.train_probs[:999], binary.train_y[:999])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        IsotonicCalibrator().fit(binary.train_probs[:1000], binary.train_y[:1000])
        IsotonicCalibrator(warn_below=100).fit(binary.train_probs[:200], binary.train_y[:200])


def test_multiclass_isotonic_renormalises_and_falls_back_to_uniform(multiclass):
    calibrator = IsotonicCalibrator().fit(multiclass.train_probs, multiclass.train_y)
    out = calibrator.predict_proba(multiclass.test_probs)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # a map sending every class of a row to 0 gives a uniform row, not a division by zero
    calibrator.maps_ = [{"x": np.array([0.0, 1.0]), "y": np.array([0.0, 0.0])}] * 3
    np.testing.assert_allclose(calibrator.predict_proba(multiclass.test_probs[:2]), 1 / 3)
