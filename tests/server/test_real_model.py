"""The server on the real default model (short): same answers as offline scoring, policy on raw confidence."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from confidently.bundle import ModelIdentity, write_bundle
from confidently.thresholds import DecisionPolicy

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
