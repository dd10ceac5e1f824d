"""No calibrated probability is exactly 0 or 1: each is bounded by what the fitting sample supports."""

from __future__ import annotations

import numpy as np
import pytest

from confidently.calibration import (
    CALIBRATORS,
    BatchCalibrator,
    ContextualCalibrator,
    HistogramBinningCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    StackedCalibrator,
)
from confidently.calibration.numeric import bound_rows, laplace_bounds

SEPARABLE_N = 200


def separable(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that separate the classes perfectly: an unbounded fit would claim certainty."""
    rng = np.random.default_rng(k)
    y = np.arange(SEPARABLE_N) % k
    probs = np.full((SEPARABLE_N, k), 0.02 / (k - 1))
    probs[np.arange(SEPARABLE_N), y] = 0.98
    probs += rng.uniform(0, 0.001, probs.shape)
    return probs / probs.sum(axis=1, keepdims=True), y


def make(name: str):
    if name == "stacked":
        return StackedCalibrator(steps=[BatchCalibrator(), PlattCalibrator()])
    if name == "isotonic":
        return IsotonicCalibrator(warn_below=0)
    return CALIBRATORS[name]()


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("name", sorted(set(CALIBRATORS) - {"contextual"}))
def test_outputs_stay_within_laplace_bounds_of_the_fitting_sample(name, k):
    probs, y = separable(k)
    calibrator = make(name).fit(probs, y)
    extremes = np.vstack([np.eye(k), probs])
    out = calibrator.predict_proba(extremes)
    assert out.min() > 0.0 and out.max() < 1.0
    if name == "batch":  # label-free: claims no frequency, only stays off 0 and 1
        assert out.min() >= 1e-12 * (1 - 1e-9)
        return
    low, high = laplace_bounds(SEPARABLE_N, k)
    assert out.min() >= low * (1 - 1e-9) and out.max() <= high * (1 + 1e-9)
    if name in ("platt", "beta", "temperature", "stacked"):  # parametric maps reach the bound here
        assert out.min() == pytest.approx(low, rel=1e-6)


def test_contextual_output_stays_off_0_and_1_even_on_one_hot_input():
    contextual = ContextualCalibrator().fit(np.array([[0.7, 0.3], [0.6, 0.4], [0.8, 0.2]]))
    out = contextual.predict_proba(np.eye(2))
    assert out.min() == pytest.approx(1e-12) and out.max() < 1.0


def test_a_histogram_bin_of_one_class_gets_laplace_not_certainty():
    scores = np.r_[np.linspace(0.05, 0.45, 20), np.linspace(0.55, 0.95, 20)]
    y = np.r_[[0, 1] * 10, [1] * 20]  # lower bin: half positive; upper bin: 20 of 20 positive
    calibrator = HistogramBinningCalibrator(bins=2).fit(np.column_stack([1 - scores, scores]), y)
    np.testing.assert_allclose(calibrator.maps_[0]["values"], [0.5, 21 / 22])


def test_a_pure_isotonic_plateau_gets_laplace_and_the_map_stays_monotone():
    scores = np.r_[np.linspace(0.0, 0.3, 10), np.linspace(0.31, 0.9, 100), np.linspace(0.91, 1.0, 3)]
    # bottom 10 rows negative, middle 100 rows 95% positive, top 3 rows positive
    y = np.r_[np.zeros(10), (np.arange(100) % 20 != 19), np.ones(3)].astype(int)
    calibrator = IsotonicCalibrator(warn_below=0).fit(np.column_stack([1 - scores, scores]), y)
    grid = np.linspace(0, 1, 1001)
    out = calibrator.predict_proba(np.column_stack([1 - grid, grid]))[:, 1]
    assert np.all(np.diff(out) >= 0)
    assert out[0] == pytest.approx(1 / 12)  # 10 negatives support 1/(10 + 2)
    # 3 positives alone support only 4/5 = 0.8, below the 0.95 plateau beneath them: the top stays at 0.95
    assert out[-1] == pytest.approx(0.95)


def test_bound_rows_lifts_the_smallest_entry_to_the_floor_and_keeps_the_rest():
    rows = np.array([[1.0, 0.0, 0.0], [0.5, 0.3, 0.2], [0.9, 0.1 - 1e-9, 1e-9]])
    out = bound_rows(rows, 0.01)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out.min(axis=1), [0.01, 0.2, 0.01])
    np.testing.assert_array_equal(out[1], rows[1])  # already above the floor: untouched
    assert np.array_equal(np.argsort(out, axis=1), np.argsort(rows, axis=1))
    assert out[0, 0] == pytest.approx(1 - 2 * 0.01)
    with pytest.raises(ValueError, match="floor must be in"):
        bound_rows(rows, 0.5)
