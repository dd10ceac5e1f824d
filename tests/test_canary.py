"""Canaries: the stored sample of calibration rows and its check (pure); the tiny-model adapter tests are in
``tests/server/test_canary_adapters.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from confidently.bundle.bundle import ModelIdentity, read_bundle, write_bundle
from confidently.monitoring.canary import CANARY_FILE, Canary
from confidently.errors import ArtifactError, DataError
from confidently.tasks.task import SENTIMENT
from confidently.decision.policy import DecisionPolicy

MODEL = ModelIdentity("tiny", "transformers", "a" * 64, "float32")
POLICY = DecisionPolicy(threshold=None, target_accuracy=None, certified=False, method="test")


def test_select_is_stratified_and_roundtrips():
    rng = np.random.default_rng(0)
    y = np.array([0] * 90 + [1] * 10)
    probs = rng.dirichlet([1, 1], size=100)
    canary = Canary.select([f"t{i}" for i in range(100)], y, probs, task=SENTIMENT, size=12, seed=3,
                           scored_with={"model": "m"})
    assert canary.true_labels.count("positive") == 6 and canary.true_labels.count("negative") == 6
    index = [int(t[1:]) for t in canary.texts]
    assert np.array_equal(canary.probs, probs[index])
    loaded = Canary.from_dict(json.loads(json.dumps(canary.to_dict())))
    assert loaded.texts == canary.texts and np.array_equal(loaded.probs, canary.probs)
    assert loaded.task == SENTIMENT and loaded.scored_with == {"model": "m"}


def test_check_measures_the_largest_change():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
    canary = Canary(SENTIMENT, None, ("a", "b", "c"), ("negative", "positive", "negative"), probs, tolerance=0.05)
    same = canary.check(probs + np.array([[0.001, -0.001]] * 3))
    assert same.passed and same.max_deviation == pytest.approx(0.001) and same.label_agreement == 1.0
    moved = canary.check(np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]]))
    assert not moved.passed and moved.max_deviation == pytest.approx(0.3) and moved.worst_text == "b"
    assert moved.mean_deviation == pytest.approx(0.1) and moved.label_agreement == pytest.approx(2 / 3)
    assert "canary FAILED: max deviation 0.3 (tolerance 0.05)" in moved.describe()
    with pytest.raises(DataError, match="re-scored 2 canary texts, the canary has 3"):
        canary.check(probs[:2])


def test_a_malformed_canary_in_a_bundle_is_one_clear_error(tmp_path):
    malformed = {"format": "confidently.canary", "format_version": 1, "rows": []}
    bundle = write_bundle(tmp_path, model=MODEL, task=SENTIMENT, chat=None, calibrator=None, policy=POLICY,
                          fitted_on={"rows_sha256": "0" * 64, "n_rows": 0}, extra_json={CANARY_FILE: malformed})
    with pytest.raises(ArtifactError, match=f"{CANARY_FILE}: malformed canary"):
        Canary.from_bundle(bundle)


def test_extras_are_hash_checked_like_the_rest(tmp_path):
    """A canary edited after the bundle was written is refused by the bundle's one reader."""
    canary = Canary(SENTIMENT, None, ("a",), ("negative",), np.array([[0.9, 0.1]]))
    write_bundle(tmp_path, model=MODEL, task=SENTIMENT, chat=None, calibrator=None, policy=POLICY,
                 fitted_on={"rows_sha256": "0" * 64, "n_rows": 1}, extra_json={CANARY_FILE: canary.to_dict()})
    assert Canary.from_bundle(read_bundle(tmp_path)).texts == ("a",)
    path = tmp_path / CANARY_FILE
    path.write_text(path.read_text().replace("0.9", "0.8"))
    with pytest.raises(ArtifactError, match=f"{CANARY_FILE} changed since the bundle was written"):
        read_bundle(tmp_path)


def test_production_payloads_are_what_the_loop_reads(tmp_path):
    from confidently.calibration import TemperatureCalibrator
    from confidently.monitoring import Reference
    from confidently.feedback.payloads import production_payloads
    from confidently.feedback.recalibration import CalibrationRows
    from confidently.decision.policy import DecisionPolicy

    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1], size=200)
    y = (rng.random(200) < probs[:, 1]).astype(int)
    calibrator = TemperatureCalibrator().fit(probs, y)
    policy = DecisionPolicy(threshold=0.7, target_accuracy=0.9, certified=True, method="test")
    payloads = production_payloads([f"t{i}" for i in range(200)], y, probs, rng.beta(1, 30, 200), task=SENTIMENT,
                                   chat=None, calibrator=calibrator, policy=policy, scored_with={"model": "m"},
                                   source="calibration split")
    assert sorted(payloads.json) == ["calibration_rows.json", "canary.json", "reference.json"]
    assert payloads.files == {}  # a temperature calibrator reads class probabilities: no features to keep
    bundle = write_bundle(tmp_path, model=MODEL, task=SENTIMENT, chat=None, calibrator=calibrator, policy=policy,
                          fitted_on={"rows_sha256": "0" * 64, "n_rows": 200}, extra_json=payloads.json)
    assert set(payloads.json) <= set(bundle.files)  # hashed in the manifest
    assert len(Canary.from_bundle(bundle).texts) == 32
    assert Reference.from_bundle(bundle).decision_rates["automate"] > 0
    rows = CalibrationRows.from_bundle(bundle)
    assert np.array_equal(rows.probs, probs) and np.array_equal(rows.y, y)


def test_the_command_line_names_the_canary_file_as_the_bundle_does():
    from confidently.monitoring.canary import CANARY_FILE
    from confidently.cli import canary as cli_canary

    assert cli_canary.CANARY_FILE == CANARY_FILE
