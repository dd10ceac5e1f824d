"""The one decision path: raw probabilities → calibrated probabilities → label, confidence, decision."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from confidently.bundle.bundle import read_bundle
from confidently.scoring.classifier import Classifier
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.decision.calibrated import CalibratedClassifier
from confidently.decision.decisions import decide
from confidently.errors import ConfidentlyError
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate
from confidently.decision.policy import DecisionPolicy

from test_bundle import POLICY, fitted_platt

TEXTS = ["the movie was great", "I hate it", "awful and boring", "a wonderful film, I love it"]
LABELS = ("negative", "positive")


def test_without_calibrator_the_answer_is_the_raw_one():
    raw = np.array([[0.8, 0.2], [0.45, 0.55]])
    decisions = decide(raw, labels=LABELS)
    assert not decisions.calibrated and decisions.decision is None and decisions.guarantee is None
    assert decisions.predicted_labels == ["negative", "positive"]
    np.testing.assert_array_equal(decisions.confidence, [0.8, 0.55])
    assert list(decisions.to_frame().columns) == []  # the raw columns are Scores.to_frame's


def test_calibrated_answer_and_decision_come_from_the_calibrated_probabilities():
    platt = fitted_platt()
    raw = np.array([[0.52, 0.48], [0.1, 0.9], [0.7, 0.3]])
    decisions = decide(raw, labels=LABELS, calibrator=platt, policy=POLICY)
    calibrated = platt.predict_proba(raw)
    np.testing.assert_array_equal(decisions.calibrated_probs, calibrated)
    assert decisions.predicted_labels == [LABELS[i] for i in calibrated.argmax(1)]
    np.testing.assert_array_equal(decisions.confidence, calibrated.max(1))
    assert list(decisions.decision) == ["automate" if c >= 0.7 else "review" for c in calibrated.max(1)]
    assert decisions.threshold == 0.7 and "with probability >= 95% over the calibration sample, the accuracy of automated predictions is >= 90%" in decisions.guarantee
    frame = decisions.to_frame()
    assert list(frame.columns) == ["calibrated_p_negative", "calibrated_p_positive", "calibrated_prediction",
                                   "calibrated_confidence", "decision", "review_reason"]
    # precomputed (out-of-fold) calibrated probabilities take the same path
    again = decide(raw, labels=LABELS, calibrated_probs=calibrated, policy=POLICY)
    pd.testing.assert_frame_equal(again.to_frame(), frame)
    with pytest.raises(ConfidentlyError, match="not both"):
        decide(raw, labels=LABELS, calibrator=platt, calibrated_probs=calibrated)


def test_a_policy_without_calibrator_decides_on_raw_confidence_and_none_reviews_all():
    raw = np.array([[0.9, 0.1], [0.4, 0.6]])
    decisions = decide(raw, labels=LABELS, policy=POLICY)
    assert list(decisions.decision) == ["automate", "review"] and not decisions.calibrated
    everything = decide(raw, labels=LABELS, policy=DecisionPolicy(None, 0.99, False, "none qualified"))
    assert list(everything.decision) == ["review", "review"]
    assert "every prediction goes to review" in everything.guarantee


def test_an_empty_batch_decides_nothing():
    decisions = decide(np.zeros((0, 2)), labels=LABELS, calibrator=fitted_platt(), policy=POLICY)
    assert len(decisions) == 0 and len(decisions.to_frame()) == 0 and list(decisions.decision) == []


def test_classify_runs_the_model_once_and_tokenizes_the_text_once(tiny_backend):
    clf = Classifier(backend=tiny_backend)
    text = "a wonderful film, I love it"
    expected = clf.score([text])
    calls = {"forward": 0, "text": 0}
    forward, encode = tiny_backend.next_token_logprobs, tiny_backend.encode_text

    def counting_forward(*args, **kwargs):
        calls["forward"] += 1
        return forward(*args, **kwargs)

    def counting_encode(value):
        calls["text"] += value == text
        return encode(value)

    tiny_backend.next_token_logprobs, tiny_backend.encode_text = counting_forward, counting_encode
    try:
        result = clf.classify(text, top_k=5)
    finally:
        del tiny_backend.next_token_logprobs, tiny_backend.encode_text
    assert calls == {"forward": 1, "text": 1}
    np.testing.assert_allclose(list(result.raw_probs.values()), expected.probs[0], atol=1e-6)
    assert result.raw_label == expected.predicted_labels[0] == result.label and not result.calibrated
    assert len(result.top_tokens) == 5 and set(result.variants) == set(LABELS)
    assert result.variants["positive"][0].prob <= result.mass["positive"] + 1e-9


def test_calibrated_classifier_paths_agree(tiny_backend):
    calibrated = CalibratedClassifier(Classifier(backend=tiny_backend), calibrator=fitted_platt(), policy=POLICY)
    many = calibrated.classify_many(TEXTS)
    scores = calibrated.classifier.score(TEXTS)
    expected = fitted_platt().predict_proba(scores.probs)
    for prediction, row, raw in zip(many, expected, scores.probs):
        assert prediction.calibrated and prediction.probs == prediction.calibrated_probs
        np.testing.assert_allclose(list(prediction.calibrated_probs.values()), row, atol=1e-12)
        assert prediction.label == LABELS[int(row.argmax())] and prediction.confidence == pytest.approx(row.max())
        assert prediction.raw_label == LABELS[int(raw.argmax())] and prediction.raw_confidence == pytest.approx(raw.max())
        assert prediction.decision == ("automate" if row.max() >= 0.7 else "review") and prediction.threshold == 0.7
    one = calibrated.classify(TEXTS[0])
    assert one.label == many[0].label and one.decision == many[0].decision
    np.testing.assert_allclose(list(one.calibrated_probs.values()), list(many[0].calibrated_probs.values()),
                               atol=1e-6)
    np.testing.assert_allclose(calibrated.predict_proba(TEXTS), expected, atol=1e-12)
    assert calibrated.predict(TEXTS) == [p.label for p in many]
    assert json.loads(json.dumps(one.to_dict()))["guarantee"] == POLICY.guarantee


def test_evaluate_writes_a_bundle_that_reproduces_its_scores_file(tiny_model_dir, tmp_path, capsys):
    """The run folder is a bundle; applying it to the test rows gives scores.parquet's calibrated columns."""
    clf = Classifier(model=str(tiny_model_dir), dtype="float32")
    splits = split_dataset(generate_sentiment(600, seed=5), seed=5)
    test = stratified_sample(splits.test, 60, seed=5)
    config = EvaluationConfig(methods=("platt", "temperature"), budget_sizes=(50,), budget_repeats=2, n_resamples=50)
    result = run_evaluate(clf, splits.calibration, test, tmp_path, config=config, progress=True)
    stages = " ".join(capsys.readouterr().err.split())  # each stage is announced with its counts
    for said in (f"› scoring {len(splits.calibration):,} calibration + 60 test rows",
                 f"› fitting 2 calibration methods on {len(splits.calibration):,} rows", "› writing the calibration bundle"):
        assert said in stages
    bundle = read_bundle(tmp_path)
    assert bundle.fitted_on["rows_sha256"] == splits.calibration.sha256()
    assert bundle.fitted_on["n_rows"] == len(splits.calibration) and bundle.policy == result.evaluation.policy
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["run"] == {k: v for k, v in bundle.manifest.items() if k not in ("format", "version")}

    frame = pd.read_parquet(tmp_path / "scores.parquet")
    rows = frame[frame["split"] == "test"]
    applied = CalibratedClassifier(clf, bundle=tmp_path).decide(
        rows[[f"raw_p_{label}" for label in clf.labels]].to_numpy())
    np.testing.assert_allclose(rows[[f"calibrated_p_{label}" for label in clf.labels]].to_numpy(),
                               applied.calibrated_probs, atol=1e-12)
    assert list(rows["calibrated_prediction"]) == applied.predicted_labels
    assert list(rows["decision"]) == list(applied.decision)
    # the shipped prediction sets travel in the bundle and reproduce the file's set column
    assert bundle.prediction_sets.name == result.evaluation.sets.shipped and "conformal.json" in bundle.files
    assert [list(s) for s in rows["prediction_set"]] == applied.set_lists
    assert bundle.decision_rule == "threshold"
    assert set(frame["calibrated_with"]) == {"out-of-fold (5-fold cross-fitting)", "the bundle's calibrator"}
    assert not {"prediction", "confidence"} & set(frame.columns)  # every answer column says raw or calibrated

    # The production loop's payloads are bundle files, hashed like the rest: the calibration rows with the raw
    # probabilities scores.parquet has for them, a canary drawn from them, and their reference distribution.
    from confidently.monitoring.canary import Canary
    from confidently.monitoring import Reference
    from confidently.feedback.recalibration import CalibrationRows

    assert {"canary.json", "reference.json", "calibration_rows.json"} <= set(bundle.files)
    calibration = frame[frame["split"] == "calibration"]
    raw_columns = [f"raw_p_{label}" for label in clf.labels]
    rows = CalibrationRows.from_bundle(bundle)
    np.testing.assert_allclose(rows.probs, calibration[raw_columns].to_numpy(), atol=1e-12)
    assert list(rows.y) == list(splits.calibration.label_indices(clf.labels))
    canary = Canary.from_bundle(bundle)
    raw_by_text = dict(zip(calibration["text"], calibration[raw_columns].to_numpy()))
    assert len(canary.texts) == 32 and all(text in raw_by_text for text in canary.texts)
    np.testing.assert_allclose(canary.probs, [raw_by_text[text] for text in canary.texts], atol=1e-12)
    assert canary.check(clf.score(list(canary.texts)).probs).passed  # the same model re-scores them alike
    assert Reference.from_bundle(bundle).n == len(splits.calibration)
