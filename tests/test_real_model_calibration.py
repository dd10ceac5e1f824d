"""`classify` and `score` with a calibration bundle on a real model (gemma-3-270m, a few texts).

The bundle is fitted here on gemma's own scores of generated labelled rows (Platt scaling, threshold
certified on out-of-fold scores), then applied by the command line in a fresh process; its answers
must be the Python API's.
"""

from __future__ import annotations

import numpy as np
import pytest

from confidently.bundle.bundle import ModelIdentity, write_bundle
from confidently.calibration import cross_fit_predict, make_calibrator
from confidently.data import generate_sentiment, stratified_sample
from confidently.decision.calibrated import CalibratedClassifier
from confidently.decision.policy import DecisionPolicy
from confidently.decision.thresholds import certify_threshold

pytestmark = pytest.mark.model

TEXTS = ["I love this movie!", "The worst meal I have ever had.", "The package arrived on Tuesday."]


@pytest.fixture(scope="module")
def gemma_bundle(gemma_classifier, tmp_path_factory):
    clf = gemma_classifier
    rows = stratified_sample(generate_sentiment(1000, seed=3), 80, seed=3)
    probs, y = clf.score(rows.texts).probs, rows.label_indices(clf.labels)
    out_of_fold = cross_fit_predict("platt", probs, y, n_splits=5, seed=0)
    policy = DecisionPolicy.from_certificate(certify_threshold(out_of_fold.max(1), out_of_fold.argmax(1) == y,
                                                               target_accuracy=0.6))
    folder = tmp_path_factory.mktemp("gemma-bundle")
    write_bundle(folder, model=ModelIdentity.of(clf.backend), task=clf.task, chat=clf.chat,
                 calibrator=make_calibrator("platt").fit(probs, y), policy=policy,
                 fitted_on={"rows_sha256": rows.sha256(), "n_rows": len(rows)})
    return folder, CalibratedClassifier(clf, bundle=folder).classify_many(TEXTS)


def test_classify_and_score_apply_the_bundle_like_the_api(gemma_bundle, cli_with_bundle):
    folder, expected = gemma_bundle
    assert any(abs(p.confidence - p.raw_confidence) > 0.01 for p in expected)  # calibration changed something
    result, frame = cli_with_bundle(folder, TEXTS)
    assert result["calibrated"] and result["label"] == expected[0].label and result["decision"] == expected[0].decision
    np.testing.assert_allclose(list(result["calibrated_probs"].values()),
                               list(expected[0].calibrated_probs.values()), atol=1e-5)

    assert list(frame["calibrated_prediction"]) == [p.label for p in expected]
    assert list(frame["decision"]) == [p.decision for p in expected]
    assert list(frame["raw_prediction"]) == [p.raw_label for p in expected]
    np.testing.assert_allclose(frame["calibrated_confidence"], [p.confidence for p in expected], atol=1e-5)
