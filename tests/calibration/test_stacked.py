import numpy as np
import pytest
from scipy.special import softmax

from confidently.calibration import (
    BatchCalibrator,
    ContextualCalibrator,
    HistogramBinningCalibrator,
    PlattCalibrator,
    StackedCalibrator,
    TemperatureCalibrator,
    calibrator_from_dict,
    make_calibrator,
)
from confidently.errors import CalibrationError, NotFittedError


def test_stack_passes_each_steps_output_to_the_next(multiclass):
    stack = StackedCalibrator(steps=[BatchCalibrator(), TemperatureCalibrator()]).fit(multiclass.train_probs, multiclass.train_y)
    first = BatchCalibrator().fit(multiclass.train_probs)
    second = TemperatureCalibrator().fit(first.predict_proba(multiclass.train_probs), multiclass.train_y)
    expected = second.predict_proba(first.predict_proba(multiclass.test_probs))
    np.testing.assert_allclose(stack.predict_proba(multiclass.test_probs), expected)


def test_stack_refuses_an_unfitted_contextual_step(binary):
    with pytest.raises(NotFittedError, match=r"steps\[0\] \(ContextualCalibrator\) must be fitted"):
        StackedCalibrator(steps=[ContextualCalibrator(), PlattCalibrator()]).fit(binary.train_probs, binary.train_y)


def test_stack_uses_a_prefitted_step_and_leaves_the_given_steps_untouched(binary):
    contextual = ContextualCalibrator().fit(softmax(np.array([[0.5, 0.0]] * 3), axis=1))
    platt = PlattCalibrator()
    stack = StackedCalibrator(steps=[contextual, platt]).fit(binary.train_probs, binary.train_y)
    assert not platt.is_fitted
    np.testing.assert_array_equal(stack.steps_[0].bias_, contextual.bias_)
    contextual.fit(np.array([[0.9, 0.1]]))  # refitting the original does not change the stack
    assert not np.array_equal(stack.steps_[0].bias_, contextual.bias_)
    loaded = calibrator_from_dict(stack.to_dict())
    np.testing.assert_array_equal(loaded.predict_proba(binary.test_probs), stack.predict_proba(binary.test_probs))
    assert loaded.steps[0].is_fitted and not loaded.steps[1].is_fitted


def test_stack_reports_a_steps_refusal(binary):
    with pytest.raises(CalibrationError, match="PlattCalibrator refuses to fit on 10 examples"):
        StackedCalibrator(steps=[BatchCalibrator(), PlattCalibrator()]).fit(binary.train_probs[:10], binary.train_y[:10])


@pytest.mark.parametrize("steps", [[], "platt", [PlattCalibrator(), "isotonic"]])
def test_stack_refuses_steps_that_are_not_calibrators(steps, binary):
    with pytest.raises(CalibrationError, match="StackedCalibrator: steps"):
        StackedCalibrator(steps=steps).fit(binary.train_probs, binary.train_y)


def test_make_calibrator_builds_methods_and_stacks():
    assert isinstance(make_calibrator("platt"), PlattCalibrator)
    assert make_calibrator("histogram", bins=5).bins == 5
    stack = make_calibrator("batch+histogram", bins=4)
    assert isinstance(stack, StackedCalibrator)
    assert [type(s) for s in stack.steps] == [BatchCalibrator, HistogramBinningCalibrator]
    assert stack.steps[1].bins == 4


def test_make_calibrator_names_what_is_wrong():
    with pytest.raises(CalibrationError, match="unknown calibration method 'platypus'; choose one of platt, isotonic"):
        make_calibrator("platypus")
    with pytest.raises(CalibrationError, match=r"got parameters \['bins'\]; it accepts: classes, min_samples"):
        make_calibrator("platt", bins=3)
