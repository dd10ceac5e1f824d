"""Conformal prediction sets: scores by hand, files, and coverage in simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from confidently.decision.conformal import (ConformalPredictor, conformal_quantile, coverage_bounds, measure_sets,
                                   nonconformity, set_labels)
from confidently.errors import ArtifactError, DataError, NotFittedError
from confidently.decision.binomial import clopper_pearson_interval

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])


def test_scores_by_hand():
    np.testing.assert_allclose(nonconformity(PROBS, "lac"), 1 - PROBS)
    # APS: the mass of the labels ranked above this one
    np.testing.assert_allclose(nonconformity(PROBS, "aps"), [[0.0, 0.7, 0.9], [0.9, 0.6, 0.0], [0.0, 0.5, 0.9]])


def test_quantile_is_the_finite_sample_rank():
    scores = np.arange(1, 20) / 20  # n = 19: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.1) == pytest.approx(18 / 20)
    assert math.isinf(conformal_quantile(scores[:5], 0.1))  # rank ceil(6 * 0.9) = 6 > 5: keep every label
    assert coverage_bounds(19, 0.1) == (pytest.approx(0.9), pytest.approx(0.95))
    assert coverage_bounds(5, 0.1) == (1.0, 1.0)


def test_sets_and_decisions_by_hand():
    cal = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]] * 5)
    y = np.array([0, 1, 0, 1] * 5)  # LAC scores 0.1, 0.3, 0.7, 0.7
    predictor = ConformalPredictor(alpha=0.25).fit(cal, y)  # n = 20: rank ceil(21 * 0.75) = 16 -> 0.7
    assert predictor.quantiles_ == {"all": pytest.approx(0.7)} and predictor.counts_ == {"all": 20}
    sets = predictor.predict_set(PROBS)  # keep labels with p >= 0.3
    np.testing.assert_array_equal(sets, [[True, False, False], [False, True, True], [True, True, False]])
    np.testing.assert_array_equal(predictor.decide(PROBS), ["automate", "review", "review"])
    assert set_labels(sets, ["a", "b", "c"]) == [["a"], ["b", "c"], ["a", "b"]]
    assert predictor.label_sets(PROBS, ["a", "b", "c"]) == [["a"], ["b", "c"], ["a", "b"]]
    with pytest.raises(DataError, match="2 labels given for prediction sets fitted on 3 classes"):
        predictor.label_sets(PROBS, ["a", "b"])


def test_class_and_group_conditional_quantiles_are_per_key():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1], 400)
    y = rng.integers(0, 2, 400)
    groups = np.where(rng.random(400) < 0.5, "sports", "work")
    by_class = ConformalPredictor(0.1, condition_on="class").fit(probs, y)
    for j in (0, 1):
        assert by_class.quantiles_[str(j)] == conformal_quantile(1 - probs[y == j, j], 0.1)
    by_group = ConformalPredictor(0.1, score="aps", condition_on="group").fit(probs, y, groups=groups)
    assert set(by_group.quantiles_) == {"sports", "work"} and sum(by_group.counts_.values()) == 400
    with pytest.raises(DataError, match="group 'chess' was not in the calibration data"):
        by_group.predict_set(probs[:2], groups=["chess", "work"])
    with pytest.raises(DataError, match="needs groups="):
        by_group.predict_set(probs[:2])
    with pytest.raises(DataError, match="class 1 has none"):
        ConformalPredictor(0.1, condition_on="class").fit(probs[:5], np.zeros(5, dtype=int))


def test_round_trip_and_malformed_files(tmp_path):
    rng = np.random.default_rng(1)
    probs, y = rng.dirichlet([1, 1, 1], 50), rng.integers(0, 3, 50)
    for condition, groups in ((None, None), ("class", None), ("group", rng.integers(0, 2, 50))):
        predictor = ConformalPredictor(0.05, score="aps", condition_on=condition).fit(probs, y, groups=groups)
        predictor.save(tmp_path / "sets.json")
        json.loads((tmp_path / "sets.json").read_text())  # plain JSON: an infinite quantile is null
        loaded = ConformalPredictor.load(tmp_path / "sets.json")
        np.testing.assert_array_equal(loaded.predict_set(probs, groups=groups),
                                      predictor.predict_set(probs, groups=groups))
    with pytest.raises(ArtifactError, match="not a confidently prediction-set file"):
        ConformalPredictor.from_dict({"format": "x"})
    good = predictor.to_dict()
    with pytest.raises(ArtifactError, match="malformed prediction sets"):
        ConformalPredictor.from_dict({**good, "alpha": 2})
    with pytest.raises(NotFittedError):
        ConformalPredictor().predict_set(probs)
    with pytest.raises(DataError, match="alpha must be in"):
        ConformalPredictor(alpha=0)


def test_measure_sets_counts_coverage_by_class_and_slice():
    sets = np.array([[True, False], [True, True], [False, True], [False, False]])
    y = np.array([0, 1, 0, 1])
    table = measure_sets(sets, y, labels=["neg", "pos"], slices={"domain": ["a", "a", "b", "b"]}).set_index("part")
    assert table.loc["all", "coverage"] == 0.5 and table.loc["all", "mean_set_size"] == 1.0
    assert table.loc["class=neg", "coverage"] == 0.5 and table.loc["class=pos", "coverage"] == 0.5
    assert table.loc["domain=a", "coverage"] == 1.0 and table.loc["domain=b", "coverage"] == 0.0
    assert table.loc["all", "singleton"] == 0.5 and table.loc["all", "empty"] == 0.25
    low, high = clopper_pearson_interval(2, 4)
    assert (table.loc["all", "coverage_low"], table.loc["all", "coverage_high"]) == (low, high)
    assert low < 0.5 < high


# -- coverage by simulation -----------------------------------------------------------------------
# A three-class model whose probabilities are miscalibrated (sharpened logits plus noise) and noisier
# in group "hard". Over many calibration sets the average test coverage must fall in the guaranteed
# [1 - alpha, 1 - alpha + 1/(n + 1)], up to three Monte-Carlo standard errors.
ALPHA, N_CAL, N_TEST, RUNS = 0.1, 200, 1000, 400


def _draw(rng, n):
    logits = rng.normal(0.0, 1.5, (n, 3))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = (rng.random((n, 1)) > truth.cumsum(1)).sum(1)
    group = np.where(rng.random(n) < 0.3, "hard", "easy")
    noise = rng.normal(0.0, np.where(group == "hard", 1.5, 0.3)[:, None], (n, 3))
    model = np.exp(1.8 * logits + noise)
    return model / model.sum(1, keepdims=True), y, group


def _mean_coverage(score, condition_on, seed):
    """Average test coverage over RUNS calibration sets: overall, per class and per group."""
    rng = np.random.default_rng(seed)
    keys = ["all", "class=0", "class=1", "class=2", "group=easy", "group=hard"]
    totals = {key: [] for key in keys}
    counts = {key: [] for key in keys}
    for _ in range(RUNS):
        cal, y_cal, g_cal = _draw(rng, N_CAL)
        test, y_test, g_test = _draw(rng, N_TEST)
        predictor = ConformalPredictor(ALPHA, score=score, condition_on=condition_on).fit(cal, y_cal, groups=g_cal)
        covered = predictor.predict_set(test, groups=g_test)[np.arange(N_TEST), y_test]
        masks = {"all": np.ones(N_TEST, bool), **{f"class={j}": y_test == j for j in range(3)},
                 "group=easy": g_test == "easy", "group=hard": g_test == "hard"}
        for key, mask in masks.items():
            totals[key].append(covered[mask].mean())
            counts[key].append((y_cal == int(key[-1])).sum() if key.startswith("class") else
                               (g_cal == key.split("=")[1]).sum() if key.startswith("group") else N_CAL)
    return {key: (np.mean(v), np.std(v) / math.sqrt(RUNS), np.mean(counts[key])) for key, v in totals.items()}


def _within_guarantee(mean, standard_error, n_cal, *, ties=False):
    slack = 3 * standard_error
    upper = 1.0 if ties else 1 - ALPHA + 1 / (n_cal + 1)
    return 1 - ALPHA - slack <= mean <= upper + slack


@pytest.mark.parametrize("score", ["lac", "aps"])
def test_simulation_marginal_coverage_is_in_the_guaranteed_range(score):
    result = _mean_coverage(score, None, seed=21)
    mean, se, _ = result["all"]
    # APS scores tie at 0 for the top label, which voids the upper end (not the lower)
    assert _within_guarantee(mean, se, N_CAL, ties=score == "aps"), (mean, se)
    # marginal sets promise nothing per group: the noisy group is under-covered
    assert result["group=hard"][0] < 1 - ALPHA - 3 * result["group=hard"][1]


@pytest.mark.parametrize("condition_on, parts", [("class", ["class=0", "class=1", "class=2"]),
                                                 ("group", ["group=easy", "group=hard"])])
def test_simulation_mondrian_coverage_holds_within_each_part(condition_on, parts):
    result = _mean_coverage("lac", condition_on, seed=22)
    for part in parts:
        mean, se, n_part = result[part]
        # the per-part upper end depends on that part's calibration count, which varies by run;
        # 1/(n+1) at the smallest typical count bounds it
        assert _within_guarantee(mean, se, n_part * 0.8), (part, mean, se)
