"""Metrics against hand-computed examples, scikit-learn, and invariants (hypothesis)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from confidently import metrics as m
from confidently.errors import DataError

# confidence 0.9, 0.8, 0.7, 0.6; correct, wrong, correct, wrong
PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
Y = np.array([0, 1, 1, 1])


def value(fn, probs=PROBS, y=Y, **kwargs) -> float:
    return fn(probs, y, n_resamples=0, **kwargs).value


def test_accuracy_by_hand():
    assert value(m.accuracy) == 0.5


def test_ece_by_hand_equal_width_and_equal_mass():
    # 20 equal-width bins: one row per bin, gaps 0.1, 0.8, 0.3, 0.6
    assert value(m.expected_calibration_error) == pytest.approx(0.45)
    # 2 equal-mass bins {0.6 wrong, 0.7 right}, {0.8 wrong, 0.9 right}: gaps 0.15 and 0.35
    assert value(m.expected_calibration_error, n_bins=2, scheme="equal_mass") == pytest.approx(0.25)


def test_mce_by_hand():
    assert value(m.maximum_calibration_error) == pytest.approx(0.8)
    assert value(m.maximum_calibration_error, n_bins=2, scheme="equal_mass") == pytest.approx(0.35)


def test_debiased_calibration_error_by_hand():
    # bin [0.9, 1.0): three rows at 0.95, all right -> 0.05² - 0; bin [0.5, 0.6): three at 0.55, all wrong
    # -> 0.55² - 0; half the rows each: sqrt(0.5 * 0.0025 + 0.5 * 0.3025)
    probs = np.array([[0.95, 0.05]] * 3 + [[0.55, 0.45]] * 3)
    y = np.array([0, 0, 0, 1, 1, 1])
    got = value(m.debiased_calibration_error, probs, y, n_bins=10, scheme="equal_width")
    assert got == pytest.approx(math.sqrt(0.1525))
    # the variance term: bins with acc 1/2 of 2 rows at confidence 0.5 subtract 0.25 and clip at 0
    assert value(m.debiased_calibration_error, np.full((4, 2), 0.5), np.array([0, 1, 0, 1]), n_bins=1) == 0.0


def test_brier_by_hand_both_definitions():
    assert value(m.brier_score) == pytest.approx((0.02 + 1.28 + 0.18 + 0.72) / 4)
    assert value(m.positive_class_brier_score) == pytest.approx((0.01 + 0.64 + 0.09 + 0.36) / 4)
    with pytest.raises(DataError, match="two classes only"):
        m.positive_class_brier_score(np.full((3, 3), 1 / 3), [0, 1, 2])


def test_nll_by_hand_and_floor():
    assert value(m.negative_log_likelihood) == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.7, 0.4])))
    assert value(m.negative_log_likelihood, np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-math.log(1e-12))


def test_auroc_by_hand_and_against_scikit_learn():
    # correct rows 0.9, 0.7 against wrong 0.8, 0.6: 3 of 4 pairs ordered
    assert value(m.confidence_auroc) == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], 500).round(2)  # rounding makes ties
    probs /= probs.sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, 500)
    correct = probs.argmax(axis=1) == y
    assert value(m.confidence_auroc, probs, y) == pytest.approx(roc_auc_score(correct, probs.max(axis=1)))


def test_auroc_is_nan_with_a_note_when_every_prediction_is_correct():
    result = m.confidence_auroc(PROBS, PROBS.argmax(axis=1), n_resamples=50)
    assert math.isnan(result.value) and math.isnan(result.ci_low)
    assert "every prediction is correct" in result.note
    assert result.to_dict()["value"] is None


def test_aurc_by_hand_with_and_without_ties():
    # risks at coverage 1/4..4/4: 0, 1/2, 1/3, 1/2
    assert value(m.aurc) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    # two rows tied at 0.9 (one wrong) share the risk 1/2; then 1/3 at 0.6
    probs, y = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]]), np.array([0, 1, 0])
    assert value(m.aurc, probs, y) == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    curve = m.risk_coverage_curve([0.9, 0.9, 0.6], [True, False, True])
    np.testing.assert_allclose(curve.threshold, [0.9, 0.6])
    np.testing.assert_allclose(curve.coverage, [2 / 3, 1.0])
    np.testing.assert_allclose(curve.risk, [0.5, 1 / 3])


def test_reliability_bins_by_hand_and_as_the_engine_of_ece():
    bins = m.reliability_bins([0.55, 0.58, 0.91, 1.0], [True, False, True, True], n_bins=20)
    filled = np.flatnonzero(bins.count)
    np.testing.assert_array_equal(filled, [11, 18, 19])
    np.testing.assert_array_equal(bins.count[filled], [2, 1, 1])
    np.testing.assert_allclose(bins.mean_confidence[filled], [0.565, 0.91, 1.0])
    np.testing.assert_allclose(bins.accuracy[filled], [0.5, 1.0, 1.0])
    np.testing.assert_allclose([bins.lower[11], bins.upper[11]], [0.55, 0.6])
    assert np.isnan(bins.accuracy[0])
    mass = m.reliability_bins([0.55, 0.58, 0.91, 1.0], [True, False, True, True], n_bins=2, scheme="equal_mass")
    np.testing.assert_allclose(mass.lower, [0.55, 0.91])
    np.testing.assert_allclose(mass.upper, [0.58, 1.0])
    json.dumps(bins.to_dict(), allow_nan=False)
    confidence, correct = PROBS.max(axis=1), PROBS.argmax(axis=1) == Y
    assert m.reliability_bins(confidence, correct).ece == pytest.approx(value(m.expected_calibration_error))


def test_metric_results_state_their_definition_and_interval():
    result = m.expected_calibration_error(PROBS, Y, n_bins=15, scheme="equal_mass", n_resamples=100, seed=4)
    assert "15 equal-mass bins" in result.definition and "Σ_b (n_b/n)" in result.definition
    assert (result.n, result.n_resamples, result.seed, result.ci_level) == (4, 100, 4, 0.95)
    assert result.ci_low <= result.ci_high
    assert "multiclass definition" in m.brier_score(PROBS, Y, n_resamples=0).definition
    with pytest.raises(DataError, match="scheme must be one of equal_width, equal_mass"):
        m.expected_calibration_error(PROBS, Y, scheme="quantile")


def test_bootstrap_interval_has_the_binomial_width():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.7).astype(int)
    probs = np.tile([0.2, 0.8], (2000, 1))  # always predicts class 1: accuracy = mean(y)
    interval = m.bootstrap_ci(m.metric_function("accuracy"), probs, y, n_resamples=1000, seed=0)
    half_width = 1.96 * math.sqrt(0.7 * 0.3 / 2000)
    assert interval.low < y.mean() < interval.high
    assert interval.high - interval.low == pytest.approx(2 * half_width, rel=0.15)
    again = m.bootstrap_ci(m.metric_function("accuracy"), probs, y, n_resamples=1000, seed=0)
    assert again == interval


def test_bootstrap_refuses_a_function_that_is_not_batch_first():
    with pytest.raises(ValueError, match="must be batch-first"):
        m.bootstrap_ci(lambda probs, y: float(np.mean(y)), PROBS, Y, n_resamples=10)


def test_paired_difference_is_zero_for_the_same_model_and_significant_for_a_better_one(tmp_path):
    rng = np.random.default_rng(2)
    z = rng.normal(0, 1.5, 2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-z))).astype(int)
    calibrated = np.column_stack([1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z))])
    raw = np.column_stack([1 / (1 + np.exp(3 * z)), 1 / (1 + np.exp(-3 * z))])
    ece = m.metric_function("ece")
    same = m.paired_bootstrap_diff(ece, (raw, y), (raw, y), n_resamples=200)
    assert (same.diff, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    better = m.paired_bootstrap_diff(ece, (calibrated, y), (raw, y), n_resamples=200)
    assert better.ci_low < better.diff < better.ci_high < 0
    json.dumps(better.to_dict(), allow_nan=False)


def test_summarize_is_json_and_fast_enough():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet([2, 2], 1000)
    y = rng.integers(0, 2, 1000)
    start = time.perf_counter()
    summary = m.summarize(probs, y, n_resamples=1000)
    assert time.perf_counter() - start < 5.0
    json.dumps(summary, allow_nan=False)
    assert set(summary["metrics"]) == {
        "accuracy", "ece", "ece_equal_mass", "debiased_ce", "mce", "brier", "brier_positive", "nll", "auroc", "aurc",
    }
    # The reliability table is the plug-in binning, so it matches ECE's sample value (the reported
    # value is bias-corrected; test_every_interval_contains_its_estimate covers that).
    assert summary["metrics"]["ece"]["sample_value"] == pytest.approx(summary["reliability"]["ece"])
    assert "20 equal-width" in summary["metrics"]["ece"]["definition"]
    assert "15 equal-mass" in summary["metrics"]["ece_equal_mass"]["definition"]
    multiclass = m.summarize(rng.dirichlet([1, 1, 1], 50), rng.integers(0, 3, 50), n_resamples=20)
    assert "brier_positive" not in multiclass["metrics"]
    assert "classwise_ece" in multiclass["metrics"] and len(multiclass["reliability_by_class"]) == 3
    json.dumps(multiclass, allow_nan=False)


def test_metrics_refuse_malformed_input():
    with pytest.raises(DataError, match="rows of probs must sum to 1"):
        m.accuracy([[0.5, 0.6]], [0])
    with pytest.raises(DataError, match=r"y\[1\] = 2 is not a class index in \[0, 1\]"):
        m.accuracy(PROBS[:2], [0, 2])
    with pytest.raises(DataError, match="unknown metric"):
        m.metric_function("f1")


def _random_probs(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.7), n)
    return probs, rng.integers(0, k, n)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), k=st.integers(2, 5),
       n_bins=st.integers(1, 30), scheme=st.sampled_from(["equal_width", "equal_mass"]))
def test_binned_errors_are_ordered_and_bounded(seed, n, k, n_bins, scheme):
    probs, y = _random_probs(seed, n, k)
    params = {"n_bins": n_bins, "scheme": scheme}
    ece = value(m.expected_calibration_error, probs, y, **params)
    mce = value(m.maximum_calibration_error, probs, y, **params)
    debiased = value(m.debiased_calibration_error, probs, y, **params)
    assert 0.0 <= ece <= mce <= 1.0
    assert 0.0 <= debiased <= 1.0
    assert 0.0 <= value(m.aurc, probs, y) <= 1.0
    assert 0.0 <= value(m.brier_score, probs, y) <= 2.0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 4))
def test_a_perfectly_calibrated_large_sample_has_ece_near_zero(seed, k):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), 20000)
    y = (rng.random(20000)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)  # y ~ probs
    assert value(m.expected_calibration_error, probs, y) < 0.03
    assert value(m.debiased_calibration_error, probs, y) < 0.03


def test_classwise_ece_by_hand_and_as_the_mean_of_the_class_tables():
    # 3 classes, 2 equal-width bins: p < 0.5 in bin 0, p >= 0.5 in bin 1.
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.8, 0.1, 0.1]])
    y = np.array([0, 0, 2, 1])
    # class 0: bin 1 holds rows 0, 3 (p 0.6, 0.8; labels 0, 1): |1.4 - 1|; bin 0 rows 1, 2 (0.2, 0.3; 0, 0): 0.5
    # class 1: bin 1 row 1 (0.7, not 1): 0.7; bin 0 rows 0, 2, 3 (0.3, 0.3, 0.1; one is 1): |0.7 - 1| = 0.3
    # class 2: bin 0 every row (0.1, 0.1, 0.4, 0.1; one is 2): |0.7 - 1| = 0.3
    expected = ((0.4 + 0.5) + (0.7 + 0.3) + 0.3) / 4 / 3
    assert value(m.classwise_calibration_error, probs, y, n_bins=2) == pytest.approx(expected)
    tables = m.classwise_reliability(probs, y, n_bins=2)
    assert [t.n for t in tables] == [4, 4, 4]
    np.testing.assert_allclose(tables[1].accuracy, [1 / 3, 0.0])
    assert np.mean([t.ece for t in tables]) == pytest.approx(expected)
    assert "Kull et al. 2019" in m.classwise_calibration_error(probs, y, n_resamples=0).definition


def test_classwise_ece_sees_a_miscalibrated_class_that_top_label_ece_misses():
    # Class 2 never wins, but always gets 0.3 while it is the label only 5% of the time. The top
    # label (0.6 on the true class... or not) is calibrated: confidence 0.6, accuracy 60%.
    n = 2000
    rng = np.random.default_rng(0)
    first = rng.random(n) < 0.5
    probs = np.where(first[:, None], [0.6, 0.1, 0.3], [0.1, 0.6, 0.3])
    top = np.where(first, 0, 1)
    draw = rng.random(n)
    y = np.where(draw < 0.6, top, np.where(draw < 0.95, 1 - top, 2))
    top_label = value(m.expected_calibration_error, probs, y)
    classwise = value(m.classwise_calibration_error, probs, y)
    assert top_label < 0.02 and classwise > 0.1


def test_bias_corrected_metrics_report_the_sample_value_and_move_down_from_it():
    rng = np.random.default_rng(16)
    probs = rng.dirichlet([1, 1], 300)
    y = (rng.random(300) < probs[:, 1]).astype(int)  # calibrated: the true ECE is near 0
    result = m.expected_calibration_error(probs, y, n_resamples=500, seed=1)
    assert result.interval == "bias_corrected"
    assert result.sample_value == pytest.approx(value(m.expected_calibration_error, probs, y))
    # The resamples sit above the sample value, so a plain percentile interval would exclude it ...
    index = np.random.default_rng(1).integers(0, 300, (500, 300))
    resampled = m.metric_function("ece")(probs[index], y[index])
    assert np.quantile(resampled, 0.025) > result.sample_value
    # ... while the corrected estimate sits below the sample value, inside its own interval.
    assert result.ci_low <= result.value <= result.ci_high and result.value < result.sample_value
    accuracy = m.accuracy(probs, y, n_resamples=500, seed=1)
    assert accuracy.interval == "percentile" and accuracy.value == accuracy.sample_value


def _assert_contains(result, where: str) -> None:
    value, low, high = result
    # Undefined values, and intervals undefined on every resample (AUROC when every resampled row
    # is correct), are reported without an interval.
    if value is None or np.isnan(value) or low is None or np.isnan(low):
        return
    assert low - 1e-12 <= value <= high + 1e-12, f"{where}: {value} outside [{low}, {high}]"


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), k=st.integers(2, 4),
       concentration=st.sampled_from([0.2, 1.0, 5.0]), labels=st.sampled_from(["calibrated", "random", "all_right"]),
       n_resamples=st.sampled_from([1, 7, 100]))
def test_every_interval_contains_its_estimate(seed, n, k, concentration, labels, n_resamples):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, concentration), n)
    if labels == "calibrated":
        y = np.minimum((rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1), k - 1)
    elif labels == "random":
        y = rng.integers(0, k, n)
    else:
        y = probs.argmax(axis=1)
    summary = m.summarize(probs, y, n_bins=int(rng.integers(1, 25)), mass_bins=int(rng.integers(1, 20)),
                          n_resamples=n_resamples, seed=seed % 1000)
    for key, metric in summary["metrics"].items():
        _assert_contains((metric["value"], metric["ci_low"], metric["ci_high"]), key)
    other = np.roll(probs, 1, axis=1)
    for name in ("ece", "accuracy", "debiased_ce"):
        fn = m.metric_function(name)
        single = m.bootstrap_ci(fn, probs, y, n_resamples=n_resamples, seed=1)
        _assert_contains((single.estimate, single.low, single.high), f"bootstrap_ci {name}")
        paired = m.paired_bootstrap_diff(fn, (probs, y), (other, y), n_resamples=n_resamples, seed=1)
        _assert_contains((paired.diff, paired.ci_low, paired.ci_high), f"paired {name}")
