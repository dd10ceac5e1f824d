import warnings

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from confidently.calibration import CalibrationWarning, IsotonicCalibrator, SmallSampleWarning, calibrator_from_dict
from confidently.decision.thresholds import certify_threshold
from confidently.errors import ArtifactError, CalibrationError


def test_isotonic_output_is_monotone_in_the_raw_score(binary):
    calibrator = IsotonicCalibrator().fit(binary.train_probs, binary.train_y)
    grid = np.linspace(0, 1, 2001)
    out = calibrator.predict_proba(np.column_stack([1 - grid, grid]))[:, 1]
    assert np.all(np.diff(out) >= 0)
    assert out[0] < 0.1 and out[-1] > 0.9


def test_isotonic_steps_match_scikit_learn_including_outside_the_fitted_range(binary):
    calibrator = IsotonicCalibrator(centred=False).fit(binary.train_probs, binary.train_y)
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


def _as_binary(score: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - score, score])


def _top_plateau_of_mixed_rows() -> tuple[np.ndarray, np.ndarray]:
    """Fitting rows whose top plateau pools weak and strong scores: below 0.8 four in five rows are
    positive (one plateau at 0.8); from 0.8 to 1.0 every row is positive but the very top one, so
    the pool-adjacent-violators fit pools all 200 of them into one plateau at 199/200."""
    score = np.r_[np.linspace(0.5, 0.79, 200), np.linspace(0.8, 1.0, 200)]
    y = np.r_[np.arange(200) % 5 != 4, np.arange(200) < 199].astype(int)
    return score, y


def test_centred_isotonic_keeps_the_raw_order_inside_a_plateau_the_steps_tie():
    score, y = _top_plateau_of_mixed_rows()
    inside = np.linspace(0.8, 1.0, 41)
    steps = IsotonicCalibrator(warn_below=0, centred=False).fit(_as_binary(score), y)
    assert np.unique(steps.predict_proba(_as_binary(inside))[:, 1]).size == 1  # one value for the whole plateau
    centred = IsotonicCalibrator(warn_below=0).fit(_as_binary(score), y)
    out = centred.predict_proba(_as_binary(inside))[:, 1]
    below_centre = inside < 0.9  # the plateau's point is its rows' mean score, 0.9
    assert np.all(np.diff(out[below_centre]) > 0)
    assert out[~below_centre] == pytest.approx(199 / 200)  # flat only past the last point
    np.testing.assert_allclose(centred.maps_[0]["x"], [np.mean(score[:200]), 0.9])
    np.testing.assert_allclose(centred.maps_[0]["y"], [0.8, 199 / 200])


def test_centred_isotonic_certifies_what_the_raw_order_certifies_where_the_steps_tie():
    """Held-out rows where the plateau's weaker half (0.8 to 0.9) is only 80% right and its stronger
    half all right: the raw score certifies 95% accuracy on the stronger rows; the step function gives
    both halves one confidence, so nothing is certified; the centred map certifies the same rows as raw."""
    score, y = _top_plateau_of_mixed_rows()
    held_out = np.r_[np.linspace(0.5, 0.79, 200), np.linspace(0.8, 0.899, 150), np.linspace(0.9, 1.0, 250)]
    held_y = np.r_[np.arange(200) % 5 != 4, np.arange(150) % 5 != 4, np.ones(250, bool)].astype(int)

    def certified(confidence: np.ndarray):
        return certify_threshold(np.maximum(confidence, 1 - confidence), (confidence >= 0.5) == held_y,
                                 target_accuracy=0.95, level=0.95)

    raw = certified(held_out)
    steps = certified(IsotonicCalibrator(warn_below=0, centred=False).fit(_as_binary(score), y)
                      .predict_proba(_as_binary(held_out))[:, 1])
    centred = certified(IsotonicCalibrator(warn_below=0).fit(_as_binary(score), y)
                        .predict_proba(_as_binary(held_out))[:, 1])
    assert raw.certified and raw.n_automated > 250
    assert not steps.certified
    assert centred.certified and centred.n_automated == raw.n_automated and centred.accuracy == raw.accuracy


def test_centred_isotonic_keeps_a_plateau_of_one_class_flat_over_its_range():
    """The bottom plateau (30 negatives) and the top one (60 positives) are not centred: every score
    they cover gets Laplace's bound for their rows; the mixed plateau between them is one point."""
    score = np.r_[np.linspace(0.0, 0.2, 30), np.linspace(0.3, 0.7, 100), np.linspace(0.8, 1.0, 60)]
    y = np.r_[np.zeros(30), (np.arange(100) + 1) % 2, np.ones(60)].astype(int)
    calibrator = IsotonicCalibrator(warn_below=0).fit(_as_binary(score), y)
    out = lambda grid: calibrator.predict_proba(_as_binary(grid))[:, 1]  # noqa: E731
    np.testing.assert_allclose(out(np.linspace(0.0, 0.2, 11)), 1 / 32)
    np.testing.assert_allclose(out(np.linspace(0.8, 1.0, 11)), 61 / 62)
    np.testing.assert_allclose(calibrator.maps_[0]["x"], [0.0, 0.2, 0.5, 0.8, 1.0])
    assert np.all(np.diff(out(np.linspace(0.2, 0.8, 61))) > 0)


# Written by IsotonicCalibrator(warn_below=0).fit(...).to_dict() before centring existed (main at b5a30f4),
# with the probabilities it gave at OLD_GRID.
OLD_FILE = {
    "format": "confidently.calibrator", "format_version": 1, "method": "isotonic",
    "params": {"classes": None, "min_samples": 20, "warn_below": 0},
    "state": {"classes_": [0, 1], "n_classes_": 2, "n_samples_": 24, "maps_": [{
        "x": [0.05, 0.2065, 0.2457, 0.3239, 0.363, 0.4022, 0.4413, 0.5196, 0.5587, 0.6761, 0.7152, 0.95],
        "y": [0.14285714285714285, 0.14285714285714285, 0.3333333333333333, 0.3333333333333333, 0.5, 0.5,
              0.6666666666666666, 0.6666666666666666, 0.75, 0.75, 0.8888888888888888, 0.8888888888888888]}]},
}
OLD_GRID = np.array([0.0, 0.1, 0.3, 0.45, 0.5, 0.62, 0.8, 1.0])
OLD_OUTPUT = [0.14285714285714285, 0.14285714285714285, 0.3333333333333333, 0.6666666666666666,
              0.6666666666666666, 0.75, 0.8888888888888888, 0.8888888888888888]


def test_a_file_saved_before_centring_loads_as_steps_and_gives_the_same_numbers():
    calibrator = calibrator_from_dict(OLD_FILE)
    assert calibrator.centred is False
    np.testing.assert_array_equal(calibrator.predict_proba(_as_binary(OLD_GRID))[:, 1], OLD_OUTPUT)
    saved_again = calibrator.to_dict()
    assert saved_again["params"]["centred"] is False  # says what it holds, and refits as steps
    np.testing.assert_array_equal(calibrator_from_dict(saved_again).predict_proba(_as_binary(OLD_GRID))[:, 1],
                                  OLD_OUTPUT)


def test_a_centred_calibrator_saves_and_loads_with_the_same_numbers(binary):
    calibrator = IsotonicCalibrator().fit(binary.train_probs, binary.train_y)
    data = calibrator.to_dict()
    assert data["params"]["centred"] is True
    loaded = calibrator_from_dict(data)
    assert loaded.centred is True
    np.testing.assert_array_equal(loaded.predict_proba(binary.test_probs), calibrator.predict_proba(binary.test_probs))


def test_centred_must_be_true_or_false(binary):
    with pytest.raises(CalibrationError, match="centred must be true or false; got 'yes'"):
        IsotonicCalibrator(centred="yes").fit(binary.train_probs, binary.train_y)
    data = {**OLD_FILE, "params": {**OLD_FILE["params"], "centred": 1}}
    with pytest.raises(ArtifactError, match="bad parameters: .*centred must be true or false; got 1"):
        calibrator_from_dict(data)
