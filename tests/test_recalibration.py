"""Recalibration from reviewed labels: adopted when demonstrably better on held-out labels, kept otherwise;
versions written beside the original, never over it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from confidently.calibration import TemperatureCalibrator
from confidently.cli.app import app
from confidently.feedback import LoggedText, open_store
from confidently.recalibration import (CALIBRATION_ROWS_FILE, latest_version, recalibrate, version_label,
                                       write_calibration_rows)
from confidently.thresholds import DecisionPolicy

LABELS = ("negative", "positive")


def draw(n: int, rng, *, sharpness: float):
    """Raw probabilities and labels where P(top label is right | confidence c) = 0.5 + sharpness * (c - 0.5)."""
    confidence = 0.5 + 0.5 * rng.beta(2, 1, size=n)
    top = rng.integers(0, 2, size=n)
    probs = np.where(top[:, None] == np.arange(2), confidence[:, None], 1 - confidence[:, None])
    right = rng.random(n) < 0.5 + sharpness * (confidence - 0.5)
    return probs, np.where(right, top, 1 - top)


@pytest.fixture()
def folder(tmp_path):
    """An adapter folder calibrated when the model was honest (sharpness 1)."""
    rng = np.random.default_rng(0)
    probs, y = draw(600, rng, sharpness=1.0)
    out = tmp_path / "support"
    out.mkdir()
    TemperatureCalibrator().fit(probs, y).save(out / "calibrator.json")
    DecisionPolicy(threshold=0.8, target_accuracy=0.9, certified=True, method="test").save(out / "policy.json")
    write_calibration_rows(out / CALIBRATION_ROWS_FILE, LABELS, probs, y, rng.beta(1, 30, size=600))
    return out


def fill(store, n: int, *, sharpness: float, seed: int, adapter: str = "support") -> None:
    rng = np.random.default_rng(seed)
    probs, y = draw(n, rng, sharpness=sharpness)
    store.record(f"r{seed}", adapter, "v1", [
        LoggedText(position=i, label=LABELS[int(p.argmax())], confidence=float(p.max()), decision="review",
                   probs=dict(zip(LABELS, p.tolist())), queue="review" if i % 3 else "audit", text=f"text {i}")
        for i, p in enumerate(probs)])
    for i, label in enumerate(y):
        store.label(f"r{seed}", i, LABELS[label], reviewer="ann")


def test_overconfident_live_traffic_gets_a_new_version(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)  # the model became overconfident
        result = recalibrate(folder, store, adapter="support")
    assert result.adopted and result.version == 2 and result.folder == folder / "versions" / "v2"
    report = result.report
    assert report["n_feedback"] == 300 and report["n_held_out"] == 90 and report["n_train_feedback"] == 210
    assert report["nll_new"] < report["nll_old"] and report["nll_difference"]["high"] < 0
    assert "wrote version 2" in result.describe()
    latest = latest_version(folder)
    assert latest.number == 2 and latest.calibrator.temperature_ > 1.5  # softer: less confident
    assert latest.reference is not None and latest.policy.target_accuracy == 0.9
    # The folder's own files are untouched; a second run builds version 3 and keeps version 2.
    assert TemperatureCalibrator.load(folder / "calibrator.json").temperature_ < 1.3
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.1, seed=2)
        again = recalibrate(folder, store, adapter="support")
    assert again.version == 3 and (folder / "versions" / "v2" / "calibrator.json").exists()
    assert version_label("ab" * 32, 3) == "abababababab.v3"


def test_traffic_like_the_calibration_rows_keeps_the_old(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=1.0, seed=3)
        result = recalibrate(folder, store, adapter="support")
    assert not result.adopted and result.folder is None and not (folder / "versions").exists()
    assert result.report["nll_difference"]["high"] >= 0
    assert result.describe().startswith("kept version 1: on 90 held-out labels")


def test_too_few_labels_keep_the_old(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 30, sharpness=0.1, seed=4)
        fill(store, 200, sharpness=0.1, seed=5, adapter="other")  # another adapter's labels do not count
        result = recalibrate(folder, store, adapter="support")
    assert not result.adopted
    assert result.describe() == ("kept version 1: too few reviewed labels: 30, of which 9 would be held out; "
                                 "need 20 held out (about 67 labels)")


def test_a_tampered_version_is_refused(folder, tmp_path):
    with open_store(tmp_path / "feedback.db") as store:
        fill(store, 300, sharpness=0.3, seed=1)
        recalibrate(folder, store, adapter="support")
    policy = folder / "versions" / "v2" / "policy.json"
    policy.write_text(policy.read_text().replace('"certified": true', '"certified": false'))
    from confidently.errors import ArtifactError

    with pytest.raises(ArtifactError, match="changed since version 2 was written"):
        latest_version(folder)


def test_cli_reports_either_way(folder, tmp_path):
    db = tmp_path / "feedback.db"
    with open_store(db) as store:
        fill(store, 300, sharpness=0.3, seed=1)
    result = CliRunner().invoke(app, ["recalibrate", str(folder), "--feedback", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["adopted"] and report["version"] == 2 and report["adapter"] == "support"
    missing = CliRunner().invoke(app, ["recalibrate", str(folder), "--feedback", str(tmp_path / "nope.db")])
    assert "nope.db: no such feedback store" in str(missing.exception)
