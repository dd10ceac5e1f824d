import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from confidently.calibration import ContextualCalibrator, PlattCalibrator, cross_fit_predict
from confidently.errors import CalibrationError
from confidently.metrics import expected_calibration_error


class Recording(PlattCalibrator):
    """Platt scaling that remembers the rows it was fitted on (by their first column)."""

    fitted_on: list = []

    def _fit(self, probs, y):
        Recording.fitted_on.append(set(probs[:, 0].tolist()))
        super()._fit(probs, y)


def test_no_row_is_calibrated_by_a_calibrator_fitted_on_it(binary):
    Recording.fitted_on = []
    out = cross_fit_predict(Recording, binary.test_probs, binary.test_y, n_splits=4, seed=3)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=3).split(binary.test_probs, binary.test_y)
    assert len(Recording.fitted_on) == 4
    for seen, (train, test) in zip(Recording.fitted_on, folds):
        assert seen.isdisjoint(binary.test_probs[test, 0].tolist())
        expected = PlattCalibrator().fit(binary.test_probs[train], binary.test_y[train]).predict_proba(binary.test_probs[test])
        np.testing.assert_allclose(out[test], expected)


@pytest.mark.parametrize("spec", ["platt", PlattCalibrator(min_samples=50), lambda: PlattCalibrator()])
def test_cross_fit_accepts_a_name_an_instance_or_a_factory(spec, binary):
    out = cross_fit_predict(spec, binary.test_probs, binary.test_y)
    before = expected_calibration_error(binary.test_probs, binary.test_y, n_resamples=0).value
    after = expected_calibration_error(out, binary.test_y, n_resamples=0).value
    assert after < 0.5 * before


def test_cross_fit_does_not_fit_the_instance_given(binary):
    given = PlattCalibrator()
    cross_fit_predict(given, binary.test_probs, binary.test_y)
    assert not given.is_fitted


def test_cross_fit_refuses_classes_smaller_than_the_number_of_folds(binary):
    y = binary.test_y.copy()
    y[:] = 0
    y[:3] = 1
    with pytest.raises(CalibrationError, match=r"n_splits=5: .* \(class 0: 2997, class 1: 3\)"):
        cross_fit_predict("platt", binary.test_probs, y)
    with pytest.raises(CalibrationError, match="n_splits must be an int >= 2"):
        cross_fit_predict("platt", binary.test_probs, binary.test_y, n_splits=1)
    with pytest.raises(CalibrationError, match="method name, a Calibrator or a factory"):
        cross_fit_predict(42, binary.test_probs, binary.test_y)


def test_cross_fit_applies_a_fitted_contextual_calibrator_and_refuses_an_unfitted_one(binary):
    with pytest.raises(CalibrationError, match="ContextualCalibrator is fitted on content-free inputs"):
        cross_fit_predict("contextual", binary.test_probs, binary.test_y)
    fitted = ContextualCalibrator().fit(np.array([[0.6, 0.4], [0.7, 0.3]]))
    out = cross_fit_predict(lambda: fitted, binary.test_probs, binary.test_y)
    np.testing.assert_array_equal(out, fitted.predict_proba(binary.test_probs))
    np.testing.assert_allclose(fitted.bias_, [0.65, 0.35])  # not refitted on the rows


def test_cross_fit_applies_a_fitted_contextual_calibrator_passed_as_an_instance(binary):
    # clone keeps a contextual calibrator's fit (it was fitted on inputs cross-fitting never sees)
    fitted = ContextualCalibrator().fit(np.array([[0.6, 0.4], [0.7, 0.3]]))
    out = cross_fit_predict(fitted, binary.test_probs, binary.test_y)
    np.testing.assert_array_equal(out, fitted.predict_proba(binary.test_probs))
