"""Few-shot prompts and prompt ensembles: shots come from calibration rows only, balanced, left out of
calibration; the ensemble combiner is cross-fitted."""

from __future__ import annotations

import numpy as np
import pytest

from confidently.calibration.ensemble import cross_fit_ensemble, ensemble_features, fit_ensemble
from confidently.scoring.classifier import Classifier
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.errors import DataError
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate
from confidently.tasks.shots import choose_shots, shot_classifier, with_shots
from confidently.tasks.task import SENTIMENT


def test_shots_are_class_balanced_seeded_and_disjoint_from_the_rest():
    y = np.array([0] * 30 + [1] * 10)
    shots = choose_shots(y, 6, n_classes=2, seed=1)
    assert sorted(np.bincount(y[list(shots.indices)], minlength=2)) == [3, 3]
    assert set(shots.indices).isdisjoint(shots.rest) and len(shots.indices) + len(shots.rest) == 40
    assert choose_shots(y, 6, n_classes=2, seed=1) == shots
    assert choose_shots(y, 6, n_classes=2, seed=2) != shots
    with pytest.raises(DataError, match="class-balanced shots"):
        choose_shots(np.array([0] * 30 + [1] * 2), 6, n_classes=2)


def test_shot_rows_holding_the_slot_marker_are_skipped():
    texts = ["a {text} b", "c {text}", "good", "bad", "fine", "awful", "nice", "poor", "great", "dull"]
    y = np.array([1, 1, 1, 0, 1, 0, 1, 0, 1, 0])
    for seed in range(5):
        shots = choose_shots(y, 4, n_classes=2, texts=texts, seed=seed)
        assert {0, 1}.isdisjoint(shots.indices) and {0, 1} <= set(shots.rest)


def test_with_shots_puts_worked_examples_in_the_shared_prefix(tiny_backend):
    task = with_shots(SENTIMENT, [("I loved it", 1), ("dreadful", 0)])
    assert 'Text: "I loved it"\nAnswer: yes' in task.template and 'Text: "dreadful"\nAnswer: no' in task.template
    clf = Classifier(backend=tiny_backend, task=task)
    assert "I loved it" in clf.prefix and "dreadful" in clf.prefix  # paid once per batch by the prefix cache
    assert task.labels == SENTIMENT.labels and task.name == "sentiment+2shots"


def test_evaluate_with_shots_never_draws_from_test_and_calibrates_without_them(tiny_model_dir, tmp_path):
    clf = Classifier(model=str(tiny_model_dir), dtype="float32")
    splits = split_dataset(generate_sentiment(400, seed=5), seed=5)
    test = stratified_sample(splits.test, 40, seed=5)
    config = EvaluationConfig(methods=("platt",), budget_sizes=(30,), budget_repeats=1, n_resamples=30)
    shot_clf, rest, shots = shot_classifier(clf, splits.calibration, 4, seed=config.seed)
    shot_texts = {splits.calibration.texts[i] for i in shots.indices}
    assert shot_texts.isdisjoint(test.texts) and shot_texts.isdisjoint(rest.texts)
    result = run_evaluate(clf, splits.calibration, test, tmp_path, config=config, progress=False, shots=4)
    assert result.evaluation.y_calibration.size == len(splits.calibration) - 4
    from confidently.bundle.bundle import read_bundle

    bundle = read_bundle(tmp_path)
    assert bundle.manifest["shots"]["calibration_rows"] == list(shots.indices)
    assert bundle.task.template == shot_clf.task.template and bundle.fitted_on["n_rows"] == len(rest)


def test_ensemble_combiner_is_cross_fitted_on_log_masses():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    # two prompts: one informative, one noise; masses in (0, 1)
    good = np.column_stack([1 - (0.3 + 0.4 * y), 0.3 + 0.4 * y]) * rng.uniform(0.5, 1, size=(200, 1))
    noise = rng.uniform(0.01, 0.5, size=(200, 2))
    features = ensemble_features([good, noise])
    assert features.shape == (200, 4) and np.allclose(features[:, :2], np.log(good))
    out_of_fold = cross_fit_ensemble([good, noise], y, n_classes=2)
    assert (out_of_fold.argmax(1) == y).mean() > 0.95
    combiner = fit_ensemble([good, noise], y, n_classes=2)
    assert np.abs(combiner.coef_[1, :2]).sum() > np.abs(combiner.coef_[1, 2:]).sum()


@pytest.mark.model
def test_real_model_few_shot_prompt_and_ensemble():
    texts = ["I loved every minute of it.", "A wonderful, moving film.", "Great acting and a clever plot.",
             "Delightful from start to finish.", "I would happily watch it again.", "Best meal in years.",
             "Dull, slow and far too long.", "The worst service I have ever had.", "A boring, lifeless script.",
             "I want my money back.", "Awful: the plot makes no sense.", "I regret buying this."]
    y = np.array([1] * 6 + [0] * 6)
    clf = Classifier(model="gemma-3-270m", dtype="float32", batch_size=4)
    zero = clf.score(texts)
    shot_task = with_shots(clf.task, [("An absolute joy.", 1), ("Tedious and ugly.", 0)])
    shot_clf = Classifier(backend=clf.backend, task=shot_task, batch_size=4)
    shot = shot_clf.score(texts)
    assert "An absolute joy." in shot_clf.prefix
    assert not np.allclose(zero.probs, shot.probs)
    alone = np.vstack([shot_clf.score([t]).probs for t in texts[:2]])
    np.testing.assert_allclose(alone, shot.probs[:2], atol=1e-5)  # the prefix cache changes nothing
    combiner = fit_ensemble([zero.mass, shot.mass], y, n_classes=2, n_splits=2)
    probs = combiner.predict_proba(ensemble_features([zero.mass, shot.mass]))
    assert probs.shape == (12, 2) and np.allclose(probs.sum(1), 1)
