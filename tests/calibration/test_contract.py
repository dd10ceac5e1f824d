"""One suite that holds every registered calibrator to the contract (scikit-learn's
``parametrize_with_checks`` idea): constructor, fit/predict, errors, JSON round trip, calibration."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from confidently.calibration import (
    CALIBRATORS,
    BatchCalibrator,
    BetaCalibrator,
    Calibrator,
    ContextualCalibrator,
    DirichletCalibrator,
    HistogramBinningCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    StackedCalibrator,
    TemperatureCalibrator,
    load_calibrator,
)
from confidently.errors import ArtifactError, CalibrationError, DataError, NotFittedError
from confidently.metrics import expected_calibration_error


@dataclass(frozen=True)
class Case:
    make: Callable[[], Calibrator]
    supervised: bool


CASES: dict[str, Case] = {
    "platt": Case(PlattCalibrator, True),
    "isotonic": Case(IsotonicCalibrator, True),
    "temperature": Case(TemperatureCalibrator, True),
    "histogram": Case(HistogramBinningCalibrator, True),
    "beta": Case(BetaCalibrator, True),
    "dirichlet": Case(DirichletCalibrator, True),
    "contextual": Case(ContextualCalibrator, False),
    "batch": Case(BatchCalibrator, False),
    "stacked": Case(lambda: StackedCalibrator(steps=[BatchCalibrator(), PlattCalibrator()]), True),
}
SUPERVISED = [name for name, case in CASES.items() if case.supervised]
K = pytest.mark.parametrize("k", [2, 3])
ALL = pytest.mark.parametrize("name", list(CASES))


@pytest.fixture
def data(request, binary, multiclass):
    return binary if request.node.callspec.params["k"] == 2 else multiclass


def ece(probs: np.ndarray, y: np.ndarray) -> float:
    return expected_calibration_error(probs, y, n_resamples=0).value


def fitted(name: str, data) -> Calibrator:
    return CASES[name].make().fit(data.train_probs, data.train_y)


def test_every_registered_calibrator_is_in_the_table():
    assert set(CASES) == set(CALIBRATORS)
    for name, case in CASES.items():
        assert type(case.make()) is CALIBRATORS[name]
        assert CALIBRATORS[name].name == name


@ALL
def test_constructor_only_stores_parameters(name):
    calibrator = CASES[name].make()
    assert not calibrator.is_fitted
    assert [a for a in vars(calibrator) if a.endswith("_")] == []
    assert list(calibrator.get_params(deep=False)) == calibrator.param_names()
    assert type(calibrator).__name__ in repr(calibrator)


@ALL
def test_use_before_fit_raises_not_fitted(name, binary, tmp_path):
    calibrator = CASES[name].make()
    with pytest.raises(NotFittedError, match="not fitted"):
        calibrator.predict_proba(binary.test_probs)
    with pytest.raises(NotFittedError):
        calibrator.save(tmp_path / "c.json")


@ALL
@K
def test_fit_returns_self_and_predicts_distributions(name, k, data):
    calibrator = CASES[name].make()
    assert calibrator.fit(data.train_probs, data.train_y) is calibrator
    out = calibrator.predict_proba(data.test_probs)
    assert out.shape == data.test_probs.shape
    assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)
    assert calibrator.n_classes_ == k and calibrator.n_samples_ == data.train_y.size


@ALL
@K
def test_save_load_gives_identical_predictions(name, k, data, tmp_path):
    calibrator = fitted(name, data)
    path = tmp_path / f"{name}.json"
    calibrator.save(path)
    text = path.read_text()
    json.loads(text)  # plain JSON, no pickle
    json.dumps(calibrator.to_dict(), allow_nan=False)
    expected = calibrator.predict_proba(data.test_probs)
    for loaded in (load_calibrator(path), type(calibrator).load(path)):
        assert type(loaded) is type(calibrator)
        assert loaded.get_params().keys() == calibrator.get_params().keys()
        np.testing.assert_array_equal(loaded.predict_proba(data.test_probs), expected)


@ALL
def test_refit_replaces_the_state(name, binary, multiclass):
    calibrator = CASES[name].make().fit(multiclass.train_probs, multiclass.train_y)
    calibrator.fit(binary.train_probs, binary.train_y)
    fresh = fitted(name, binary)
    np.testing.assert_allclose(calibrator.predict_proba(binary.test_probs), fresh.predict_proba(binary.test_probs))
    assert calibrator.to_dict() == fresh.to_dict()


@ALL
def test_predict_refuses_another_class_count(name, binary, multiclass):
    calibrator = fitted(name, binary)
    with pytest.raises(DataError, match="3 class columns but 2"):
        calibrator.predict_proba(multiclass.test_probs)


@ALL
def test_fit_refuses_malformed_probs(name, binary):
    bad = binary.train_probs.copy()
    bad[5] = [0.7, 0.7]
    with pytest.raises(DataError, match="row 5 sums to 1.4"):
        CASES[name].make().fit(bad, binary.train_y)


@ALL
def test_load_refuses_another_method_and_corrupt_state(name, binary):
    data = fitted(name, binary).to_dict()
    other = IsotonicCalibrator if name != "isotonic" else PlattCalibrator
    with pytest.raises(ArtifactError, match="use confidently.calibration.load_calibrator"):
        other.from_dict(data)
    truncated = {**data, "state": {"n_classes_": 2, "n_samples_": 3000}}
    with pytest.raises(ArtifactError, match=r"saved \w+ calibrator"):
        CALIBRATORS[name].from_dict(truncated)
    with pytest.raises(ArtifactError, match="n_classes_ must be an int"):
        CALIBRATORS[name].from_dict({**data, "state": {**data["state"], "n_classes_": "two"}})
    with pytest.raises(ArtifactError, match="format_version"):
        CALIBRATORS[name].from_dict({**data, "format_version": 99})


@ALL
def test_relabelling_classes_permutes_the_output(name, multiclass):
    permutation = np.array([2, 0, 1])  # new column j holds old class permutation[j]
    inverse = np.argsort(permutation)
    original = fitted(name, multiclass).predict_proba(multiclass.test_probs)
    relabelled = CASES[name].make().fit(multiclass.train_probs[:, permutation], inverse[multiclass.train_y])
    np.testing.assert_allclose(relabelled.predict_proba(multiclass.test_probs[:, permutation]),
                               original[:, permutation], atol=1e-4)


def assert_calibrates(calibrator: Calibrator, data) -> None:
    """The calibrator changes the miscalibrated scores and at least halves the held-out ECE."""
    calibrator.fit(data.train_probs, data.train_y)
    out = calibrator.predict_proba(data.test_probs)
    assert np.abs(out - data.test_probs).max() > 0.05, "output equals input: the calibrator did nothing"
    before, after = ece(data.test_probs, data.test_y), ece(out, data.test_y)
    assert after < 0.5 * before, f"held-out ECE {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("name", SUPERVISED)
@K
def test_supervised_calibrator_reduces_held_out_ece(name, k, data):
    assert_calibrates(CASES[name].make(), data)


class DoNothing(PlattCalibrator):
    """A broken calibrator: fits, but returns its input."""

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        return probs


def test_the_calibration_check_catches_a_calibrator_that_does_nothing(binary):
    with pytest.raises(AssertionError, match="did nothing"):
        assert_calibrates(DoNothing(), binary)


@pytest.mark.parametrize("name", SUPERVISED)
def test_supervised_calibrator_refuses_one_class(name, binary):
    y = np.zeros(binary.train_y.size, dtype=int)
    with pytest.raises(CalibrationError, match=r"all 3000 examples are in one class \(class 0: 3000, class 1: 0\)"):
        CASES[name].make().fit(binary.train_probs, y)


@pytest.mark.parametrize("name", SUPERVISED)
def test_supervised_calibrator_refuses_too_few_examples(name, binary):
    with pytest.raises(CalibrationError, match=r"refuses to fit on 19 examples \(min_samples=20; class 0: \d+, class 1: \d+\)"):
        CASES[name].make().fit(binary.train_probs[:19], binary.train_y[:19])


@pytest.mark.parametrize("name", SUPERVISED)
def test_supervised_calibrator_needs_labels(name, binary):
    with pytest.raises(CalibrationError, match="needs labels"):
        CASES[name].make().fit(binary.train_probs)


@pytest.mark.parametrize("name", [n for n in SUPERVISED if n != "stacked"])
def test_bad_parameters_are_refused_at_fit(name, binary):
    calibrator = CALIBRATORS[name](min_samples=1)
    with pytest.raises(CalibrationError, match=r"min_samples must be int in \[2, inf\]; got 1"):
        calibrator.fit(binary.train_probs, binary.train_y)
