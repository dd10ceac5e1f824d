"""The calibration study on synthetic scores with a known miscalibration."""

import json

import numpy as np
import pytest

from confidently.evaluation import EvaluationConfig, evaluate_scores
from confidently.report.evaluation import write_evaluation

FAST = EvaluationConfig(budget_sizes=(50, 200), budget_repeats=3, n_resamples=200)


def miscalibrated(n, seed):
    rng = np.random.default_rng(seed)
    logit = rng.normal(0, 2.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    p = 1 / (1 + np.exp(-(3 * logit - 1)))  # overconfident and biased
    return np.stack([1 - p, p], axis=1), y


@pytest.fixture(scope="module")
def evaluation():
    cal, y_cal = miscalibrated(800, 0)
    test, y_test = miscalibrated(600, 1)
    return evaluate_scores(cal, y_cal, test, y_test, labels=("negative", "positive"),
                           content_free=np.array([[0.62, 0.38], [0.58, 0.42]]), config=FAST)


def test_calibration_reduces_held_out_ece(evaluation):
    raw = evaluation.methods["raw"].test["metrics"]["ece"]["value"]
    for name in ("platt", "temperature", "beta"):
        assert evaluation.methods[name].test["metrics"]["ece"]["value"] < raw / 2


def test_crossfit_scores_are_out_of_fold(evaluation):
    # In-sample calibrated scores of the saved calibrator differ from the out-of-fold ones we report.
    platt = evaluation.methods["platt"]
    cal, y_cal = miscalibrated(800, 0)
    in_sample = platt.calibrator.predict_proba(cal)
    assert np.abs(in_sample - platt.crossfit_probs).max() > 1e-4


def test_choice_uses_calibration_data_only(evaluation):
    best = evaluation.best
    crossfit = {name: r.crossfit["metrics"]["nll"]["value"] for name, r in evaluation.methods.items()
                if name != "raw"}
    assert best == min(crossfit, key=crossfit.get)


def test_label_free_methods_use_their_own_inputs(evaluation):
    contextual = evaluation.methods["contextual"].calibrator.bias_
    batch = evaluation.methods["batch"].calibrator.bias_
    np.testing.assert_allclose(contextual, [0.6, 0.4])
    assert np.abs(batch - contextual).max() > 0.01


def test_policy_is_certified_on_calibration_then_applied_to_test(evaluation):
    policy, on_test = evaluation.policy, evaluation.policy_on_test
    if policy.threshold is not None:
        best = evaluation.methods[evaluation.best]
        assert on_test["n_automated"] == int((best.test_probs.max(1) >= policy.threshold).sum())


def test_label_budget_has_every_size_and_method(evaluation):
    sizes = sorted(set(evaluation.budget["n_labels"]))
    assert sizes == [50, 200, 800]
    assert set(evaluation.budget["calibrator"]) == set(FAST.budget_methods)


def test_written_files_agree(evaluation, tmp_path):
    paths = write_evaluation(evaluation, tmp_path, title="t", metadata={"model": "synthetic"})
    metrics = json.loads(paths["metrics"].read_text())
    ece = metrics["methods"]["platt"]["test_split"]["metrics"]["ece"]["value"]
    assert ece == pytest.approx(evaluation.methods["platt"].test["metrics"]["ece"]["value"])
    assert f"{ece:.4f}" in paths["report"].read_text() and f"{ece:.4f}" in paths["summary"].read_text()
    from confidently.calibration import load_calibrator

    saved = load_calibrator(paths["calibrator"])
    np.testing.assert_allclose(saved.predict_proba(miscalibrated(50, 3)[0]),
                               evaluation.methods[evaluation.best].calibrator.predict_proba(miscalibrated(50, 3)[0]))


def test_three_classes_get_classwise_calibration_in_the_report(tmp_path):
    from scipy.special import softmax

    def confused(n, seed):
        # True probabilities: softmax of 0.5 ln p, with class 0's score also speaking for class 1.
        rng = np.random.default_rng(seed)
        raw = softmax(rng.normal(0.0, 2.0, (n, 3)), axis=1)
        true = softmax(np.log(raw) @ np.array([[0.5, 0, 0], [0.4, 0.5, 0], [0, 0, 0.5]]).T, axis=1)
        return raw, np.minimum((rng.random(n)[:, None] > np.cumsum(true, axis=1)).sum(axis=1), 2)

    cal, y_cal = confused(600, 0)
    test, y_test = confused(600, 1)
    config = EvaluationConfig(methods=("temperature", "isotonic", "dirichlet"), budget_sizes=(100,),
                              budget_repeats=2, n_resamples=200)
    result = evaluate_scores(cal, y_cal, test, y_test, labels=("a", "b", "c"), config=config)
    classwise = {name: r.test["metrics"]["classwise_ece"]["value"] for name, r in result.methods.items()}
    assert classwise["dirichlet"] < classwise["raw"] / 2
    assert len(result.methods["dirichlet"].test["reliability_by_class"]) == 3
    paths = write_evaluation(result, tmp_path, title="three", metadata={})
    report = paths["report"].read_text()
    assert "Calibration of every class" in report and "per-class reliability on the test split" in report
    assert f"{classwise['dirichlet']:.4f}" in report
