import numpy as np

from confidently.calibration import HistogramBinningCalibrator


def _binary(scores, y):
    scores = np.asarray(scores, dtype=float)
    return np.column_stack([1 - scores, scores]), np.asarray(y)


def test_histogram_maps_each_equal_mass_bin_to_its_positive_rate():
    probs, y = _binary([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9] * 5, [0, 0, 1, 0, 1, 1, 0, 1] * 5)
    calibrator = HistogramBinningCalibrator(bins=2).fit(probs, y)
    # two bins of 20 examples: scores <= 0.4 (5 of 20 positive) and >= 0.6 (15 of 20)
    out = calibrator.predict_proba(_binary([0.0, 0.35, 0.65, 1.0], [0, 0, 0, 0])[0])[:, 1]
    np.testing.assert_allclose(out, [0.25, 0.25, 0.75, 0.75])


def test_histogram_output_takes_at_most_bins_values(binary):
    calibrator = HistogramBinningCalibrator(bins=7).fit(binary.train_probs, binary.train_y)
    values = np.unique(calibrator.predict_proba(binary.test_probs)[:, 1])
    assert 2 <= values.size <= 7
    assert np.all(np.diff(calibrator.maps_[0]["values"]) > -0.1)  # roughly increasing on this data


def test_histogram_merges_bins_without_examples_when_scores_tie():
    # 30 of 40 scores are tied at 0.5: quantile edges repeat and would leave empty bins
    probs, y = _binary([0.5] * 30 + list(np.linspace(0.6, 0.9, 10)), [0, 1, 1] * 10 + [1] * 10)
    calibrator = HistogramBinningCalibrator(bins=10).fit(probs, y)
    (fitted,) = calibrator.maps_
    assert fitted["values"].size == fitted["edges"].size + 1
    index = np.searchsorted(fitted["edges"], probs[:, 1], side="right")
    counts = np.bincount(index, minlength=fitted["values"].size)
    assert np.all(counts > 0)
    tied_bin = index[0]
    np.testing.assert_allclose(calibrator.predict_proba(probs[:1])[0, 1], y[index == tied_bin].mean())
