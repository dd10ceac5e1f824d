import numpy as np
from scipy.special import softmax

from confidently.calibration import BatchCalibrator, ContextualCalibrator

BIAS = np.array([1.0, 0.0, -1.0])  # an additive log-bias towards class 0


def _biased(n: int = 6000, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, 3))
    return softmax(z + BIAS, axis=1), softmax(z, axis=1)


def test_contextual_calibration_removes_a_known_log_bias_exactly():
    biased, unbiased = _biased()
    content_free = softmax(np.tile(BIAS, (3, 1)), axis=1)  # "N/A", "", "[MASK]" all show the bias alone
    calibrator = ContextualCalibrator().fit(content_free)
    np.testing.assert_allclose(calibrator.bias_, softmax(BIAS))
    np.testing.assert_allclose(calibrator.predict_proba(biased), unbiased, atol=1e-12)


def test_contextual_is_normalised_division_by_the_content_free_mean():
    content_free = np.array([[0.7, 0.3], [0.5, 0.5], [0.6, 0.4]])
    calibrator = ContextualCalibrator().fit(content_free, y=[0, 1, 1])  # labels are ignored
    p_cf = np.array([0.6, 0.4])
    probs = np.array([[0.6, 0.4], [0.9, 0.1]])
    expected = (probs / p_cf) / (probs / p_cf).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(calibrator.predict_proba(probs), expected)
    np.testing.assert_allclose(calibrator.predict_proba(probs)[0], [0.5, 0.5])


def test_batch_calibration_removes_a_known_log_bias_from_unlabelled_scores():
    biased, unbiased = _biased()
    calibrator = BatchCalibrator().fit(biased)
    out = calibrator.predict_proba(biased)
    # the batch mean is a shrunken estimate of softmax(BIAS): same order, smaller spread
    assert np.all(np.diff(np.log(calibrator.bias_)) < -0.5)
    # one step removes most, not all, of a strong bias (the paper's estimator, no iteration)
    before = np.abs(biased.mean(axis=0) - 1 / 3).max()
    after = np.abs(out.mean(axis=0) - 1 / 3).max()
    assert after < 0.5 * before
    agreement_before = (biased.argmax(axis=1) == unbiased.argmax(axis=1)).mean()
    agreement_after = (out.argmax(axis=1) == unbiased.argmax(axis=1)).mean()
    assert agreement_before < 0.7 and agreement_after > 0.85
