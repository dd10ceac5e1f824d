"""The server on the real default model (short): same answers as offline scoring, policy on raw confidence."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from confidently.bundle.bundle import ModelIdentity, write_bundle
from confidently.decision.policy import DecisionPolicy

pytestmark = pytest.mark.model

TEXTS = ["I absolutely loved this film, it was wonderful.", "The worst meal I have ever had.", "An okay product."]


def test_default_model_is_served_like_offline_scoring(serve_backend, default_classifier, tmp_path):
    # A bundle with a policy and no calibrator: the threshold applies to the raw confidence.
    write_bundle(tmp_path, model=ModelIdentity.of(default_classifier.backend), task=default_classifier.task,
                 chat=default_classifier.chat, calibrator=None,
                 policy=DecisionPolicy(threshold=0.8, target_accuracy=None, certified=False, method="test"),
                 fitted_on={"rows_sha256": "0" * 64, "n_rows": 0})
    with serve_backend(default_classifier.backend, calibration=tmp_path) as live:
        reply = httpx.post(live.url + "/v1/classify", json={"texts": TEXTS}, timeout=120).json()
    expected = default_classifier.score(TEXTS)
    served = np.array([[r["raw_probs"][label] for label in reply["labels"]] for r in reply["results"]])
    np.testing.assert_allclose(served, expected.probs, atol=1e-4)
    assert reply["labels"] == ["negative", "positive"] and reply["decided_on"] == "raw"
    assert [r["raw_label"] for r in reply["results"]] == expected.predicted_labels
    assert [r["decision"] for r in reply["results"]] == [
        "automate" if c >= 0.8 else "review" for c in expected.confidence]


def test_gemma_served_with_prediction_sets_like_the_api(serve_backend, tmp_path):
    """A bundle with prediction sets fitted on gemma-3-270m's scores: the server's sets are the API's."""
    from confidently.scoring.classifier import Classifier
    from confidently.decision.conformal import ConformalPredictor
    from confidently.data import generate_sentiment, stratified_sample
    from confidently.decision.calibrated import CalibratedClassifier

    gemma = Classifier(model="gemma-3-270m", dtype="float32")
    rows = stratified_sample(generate_sentiment(1000, seed=3), 40, seed=3)
    sets = ConformalPredictor(0.2).fit(gemma.score(rows.texts).probs, rows.label_indices(gemma.labels))
    write_bundle(tmp_path, model=ModelIdentity.of(gemma.backend), task=gemma.task, chat=gemma.chat, calibrator=None,
                 policy=DecisionPolicy(threshold=0.8, target_accuracy=None, certified=False, method="test"),
                 fitted_on={"rows_sha256": rows.sha256(), "n_rows": len(rows)},
                 extra_json={"conformal.json": sets.to_dict()})
    expected = CalibratedClassifier(gemma, bundle=tmp_path).classify_many(TEXTS)
    with serve_backend(gemma.backend, calibration=tmp_path) as live:
        reply = httpx.post(live.url + "/v1/classify", json={"texts": TEXTS}, timeout=120).json()
    assert [r["prediction_set"] for r in reply["results"]] == [p.prediction_set for p in expected]
    assert all(p.prediction_set for p in expected) and reply["set_guarantee"] == sets.guarantee
    assert reply["decision_rule"] == "threshold"  # the bundle records no rule: the threshold decides
