"""Prediction sets on a real model (gemma-3-270m, float32): ``evaluate`` and ``finetune`` write them into
their bundles, and the Python API and the command line apply them to a handful of texts alike."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from confidently.bundle.bundle import CONFORMAL_FILE, read_bundle
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.decision.calibrated import CalibratedClassifier

pytestmark = pytest.mark.model

TEXTS = ["I love this movie!", "The worst meal I have ever had.", "The package arrived on Tuesday.",
         "Not bad at all, I would go back."]


@pytest.fixture(scope="module")
def evaluated(gemma_classifier, tmp_path_factory):
    """A small evaluate run on gemma's scores, its bundle deciding by prediction sets."""
    from confidently.workflows.evaluation import EvaluationConfig
    from confidently.workflows.pipeline import run_evaluate

    splits = split_dataset(generate_sentiment(1200, seed=11), seed=11)
    calibration = stratified_sample(splits.calibration, 80, seed=11)
    test = stratified_sample(splits.test, 40, seed=11)
    config = EvaluationConfig(methods=("platt",), budget_sizes=(50,), budget_repeats=1, n_resamples=50,
                              alpha=0.2, decision_rule="prediction_set")
    folder = tmp_path_factory.mktemp("gemma-evaluate")
    result = run_evaluate(gemma_classifier, calibration, test, folder, config=config, progress=False)
    return folder, result


def test_evaluate_ships_the_sets_in_the_bundle_and_the_api_applies_them(gemma_classifier, evaluated):
    folder, result = evaluated
    bundle = read_bundle(folder)
    assert bundle.decision_rule == "prediction_set" and CONFORMAL_FILE in bundle.files
    assert bundle.prediction_sets.to_dict() == result.evaluation.sets.predictors["lac"].to_dict()
    frame = pd.read_parquet(folder / "scores.parquet")
    rows = frame[frame["split"] == "test"]
    raw = rows[[f"raw_p_{label}" for label in gemma_classifier.labels]].to_numpy()
    applied = CalibratedClassifier(gemma_classifier, bundle=folder).decide(raw)
    assert [list(s) for s in rows["prediction_set"]] == applied.set_lists
    assert list(rows["decision"]) == list(applied.decision)
    sizes = rows["prediction_set_size"].to_numpy()
    assert list(rows["decision"]) == ["automate" if s == 1 else "review" for s in sizes]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["headline"]["decision_rule"] == "prediction_set"
    assert metrics["headline"]["set_rule_on_test"]["n_automated"] == int((sizes == 1).sum())


def test_classify_and_score_show_the_bundles_sets_like_the_api(gemma_classifier, evaluated, cli_with_bundle):
    folder, _ = evaluated
    expected = CalibratedClassifier(gemma_classifier, bundle=folder).classify_many(TEXTS)
    assert all(p.prediction_set and p.decided_by == "prediction_set" for p in expected)
    result, frame = cli_with_bundle(folder, TEXTS)
    assert result["prediction_set"] == expected[0].prediction_set and result["decision"] == expected[0].decision
    assert result["guarantee"] == expected[0].guarantee and "of all items" in result["guarantee"]
    assert [json.loads(s) for s in frame["prediction_set"]] == [p.prediction_set for p in expected]
    assert list(frame["decision"]) == [p.decision for p in expected]


def test_finetune_ships_prediction_sets_in_the_adapter_bundle(gemma_classifier, tmp_path):
    from confidently.finetune import FinetuneConfig, finetune

    splits = split_dataset(generate_sentiment(400, seed=2), seed=2)
    config = FinetuneConfig(model="gemma-3-270m", max_steps=2, batch_size=4, grad_accum=1, max_validation=8,
                            checkpoint_every=1, alpha=0.2, decision_rule="prediction_set")
    result = finetune(splits.train, tmp_path / "adapter", config, calibration=splits.calibration.subset(range(40)),
                      backend=gemma_classifier.backend, progress=False)
    bundle = read_bundle(result.path)
    assert bundle.is_adapter and bundle.decision_rule == "prediction_set"
    assert bundle.prediction_sets.alpha == 0.2 and bundle.prediction_sets.counts_ == {"all": 40}
    calibrated = CalibratedClassifier.load(result.path, dtype="float32")
    predictions = calibrated.classify_many(TEXTS)
    probs = np.array([list(p.calibrated_probs.values()) for p in predictions])
    expected = bundle.prediction_sets.label_sets(probs, gemma_classifier.labels)
    assert [p.prediction_set for p in predictions] == expected
    assert [p.decision for p in predictions] == ["automate" if len(s) == 1 else "review" for s in expected]
