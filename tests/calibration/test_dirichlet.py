"""Dirichlet calibration: recovers a known joint map, beats per-class methods when classes are
confused with each other, and its penalty does what it says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from confidently.calibration import DirichletCalibrator, IsotonicCalibrator, PlattCalibrator, TemperatureCalibrator
from confidently.metrics import classwise_calibration_error, negative_log_likelihood

# The true probabilities are softmax(W ln p + b) of the raw ones: over-confident (diagonal 0.5), and
# class 0's raw score also speaks for class 1 (a confusion no per-class map can express).
TRUE_W = np.array([[0.5, 0.0, 0.0], [0.4, 0.5, 0.0], [0.0, 0.0, 0.5]])
TRUE_B = np.array([0.0, -0.3, 0.2])


def confused(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw probabilities, labels drawn from the true ones, and the true ones."""
    rng = np.random.default_rng(seed)
    raw = softmax(rng.normal(0.0, 2.0, (n, 3)), axis=1)
    true = softmax(np.log(raw) @ TRUE_W.T + TRUE_B, axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(true, axis=1)).sum(axis=1)
    return raw, np.minimum(y, 2), true


def test_recovers_a_known_joint_map():
    raw, y, _ = confused(20000, 0)
    test_raw, _, test_true = confused(2000, 1)
    calibrator = DirichletCalibrator(off_diagonal_l2=1e-3, intercept_l2=1e-3).fit(raw, y)
    error = np.abs(calibrator.predict_proba(test_raw) - test_true)
    assert error.mean() < 0.01 and error.max() < 0.08
    # The identity map (raw probabilities) is far off, so the check can fail.
    assert np.abs(test_raw - test_true).mean() > 0.05


def test_beats_per_class_methods_when_classes_are_confused():
    raw, y, _ = confused(1000, 2)
    test_raw, test_y, test_true = confused(5000, 3)
    nll = {}
    for calibrator in (DirichletCalibrator(), TemperatureCalibrator(), PlattCalibrator(), IsotonicCalibrator()):
        out = calibrator.fit(raw, y).predict_proba(test_raw)
        nll[calibrator.name] = negative_log_likelihood(out, test_y, n_resamples=0).value
    best_other = min(v for k, v in nll.items() if k != "dirichlet")
    oracle = negative_log_likelihood(test_true, test_y, n_resamples=0).value
    assert nll["dirichlet"] < best_other - 0.01, nll
    assert nll["dirichlet"] < oracle + 0.01, (nll, oracle)
    dirichlet = DirichletCalibrator().fit(raw, y).predict_proba(test_raw)
    assert (classwise_calibration_error(dirichlet, test_y, n_resamples=0).value
            < classwise_calibration_error(TemperatureCalibrator().fit(raw, y).predict_proba(test_raw), test_y,
                                          n_resamples=0).value)


def test_the_penalty_shrinks_off_diagonal_weights_and_biases_only():
    raw, y, _ = confused(300, 4)
    off_diagonal = ~np.eye(3, dtype=bool)
    sizes = []
    for strength in (0.1, 10.0, 1000.0, 1e6):
        fitted = DirichletCalibrator(off_diagonal_l2=strength, intercept_l2=strength).fit(raw, y)
        sizes.append(np.abs(fitted.coef_[off_diagonal]).sum() + np.abs(fitted.intercept_).sum())
        if strength == 1e6:
            # Only the diagonal is left: per-class scales on ln p, which still undo over-confidence.
            assert sizes[-1] < 1e-3
            assert np.diag(fitted.coef_).mean() < 0.8
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 3 * sizes[2]


def test_refuses_a_negative_penalty():
    raw, y, _ = confused(100, 5)
    with pytest.raises(Exception, match=r"off_diagonal_l2 must be float in \[0.0, inf\]; got -1.0"):
        DirichletCalibrator(off_diagonal_l2=-1.0).fit(raw, y)
