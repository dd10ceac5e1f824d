import numpy as np
from scipy.special import expit

from synthetic import make_scores
from confidently.calibration import BetaCalibrator


def _scores_with_true_map(a: float, b: float, c: float, n: int = 20000, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.001, 0.999, n)
    y = (rng.random(n) < expit(a * np.log(s) - b * np.log1p(-s) + c)).astype(int)
    return np.column_stack([1 - s, s]), y


def test_beta_recovers_the_parameters_of_its_own_family():
    probs, y = _scores_with_true_map(2.0, 0.5, 0.3)
    (fitted,) = BetaCalibrator().fit(probs, y).maps_
    np.testing.assert_allclose([fitted["a"], fitted["b"], fitted["c"]], [2.0, 0.5, 0.3], atol=0.15)


def test_beta_is_near_identity_on_calibrated_scores():
    probs, y = make_scores(20000, 2, seed=3, sharpen=1.0)
    (fitted,) = BetaCalibrator().fit(probs, y).maps_
    np.testing.assert_allclose([fitted["a"], fitted["b"], fitted["c"]], [1.0, 1.0, 0.0], atol=0.1)


def test_beta_refits_without_the_feature_whose_coefficient_is_negative():
    # the true a is negative: the reference implementation drops ln(s) and refits with a = 0
    probs, y = _scores_with_true_map(-1.0, 2.0, 0.0)
    (fitted,) = BetaCalibrator().fit(probs, y).maps_
    assert fitted["a"] == 0.0 and fitted["b"] > 0
    probs, y = _scores_with_true_map(2.0, -1.0, 0.0)
    (fitted,) = BetaCalibrator().fit(probs, y).maps_
    assert fitted["b"] == 0.0 and fitted["a"] > 0
    grid = np.linspace(0.001, 0.999, 500)
    out = BetaCalibrator().fit(probs, y).predict_proba(np.column_stack([1 - grid, grid]))[:, 1]
    assert np.all(np.diff(out) >= 0)
