"""The calibration bundle: one writer, one reader that checks every hash, and refusals of foreign bundles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from confidently.bundle.bundle import (BUNDLE_FORMAT, Bundle, BundleMismatchError, ModelIdentity,
                                       PrecisionMismatchWarning, read_bundle, task_fingerprint, write_bundle)
from confidently.calibration import PlattCalibrator
from confidently.scoring.classifier import Classifier
from confidently.decision.calibrated import CalibratedClassifier
from confidently.errors import ArtifactError, ConfidentlyError
from confidently.tasks.task import SENTIMENT, Label, Task
from confidently.decision.policy import DecisionPolicy

TEXTS = ["the movie was great", "I hate it", "awful and boring", "a wonderful film, I love it"]
POLICY = DecisionPolicy(threshold=0.7, target_accuracy=0.9, certified=True, method="test", level=0.95)


def fitted_platt(seed: int = 0) -> PlattCalibrator:
    rng = np.random.default_rng(seed)
    score = rng.uniform(0.05, 0.95, 300)
    y = (rng.uniform(size=300) < score).astype(int)
    return PlattCalibrator().fit(np.column_stack([1 - score, score]), y)


def make_bundle(folder, classifier: Classifier, **overrides) -> Bundle:
    options = {"model": ModelIdentity.of(classifier.backend), "task": classifier.task, "chat": classifier.chat,
               "calibrator": fitted_platt(), "policy": POLICY,
               "fitted_on": {"rows_sha256": "ab" * 32, "n_rows": 300, "split": "calibration"}, **overrides}
    return write_bundle(folder, **options)


@pytest.fixture(scope="module")
def clf(tiny_backend):
    return Classifier(backend=tiny_backend)


def test_written_bundle_reads_back_with_its_record(clf, tmp_path):
    bundle = make_bundle(tmp_path / "run", clf, extra_json={"canary.json": {"texts": TEXTS}},
                         metadata={"calibration_method": "platt"})
    again = read_bundle(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["format"] == BUNDLE_FORMAT and manifest == bundle.manifest == again.manifest
    assert set(manifest["files"]) == {"calibrator.json", "policy.json", "canary.json"}
    assert manifest["model"] == {"name": clf.backend.model_name, "backend": "transformers",
                                 "weights_id": clf.backend.weights_id, "dtype": "float32", "adapter_sha256": None}
    assert manifest["task"] == SENTIMENT.to_dict() and manifest["fitted_on"]["n_rows"] == 300
    assert {"numpy", "torch", "confidently"} <= set(manifest["library_versions"]) and manifest["created"]
    assert manifest["calibration_method"] == "platt"
    assert again.extras == {"canary.json": {"texts": TEXTS}} and again.policy == POLICY
    assert not again.is_adapter and len(again.manifest_sha256) == 64
    probs = np.array([[0.3, 0.7], [0.9, 0.1]])
    np.testing.assert_array_equal(again.calibrator.predict_proba(probs), fitted_platt().predict_proba(probs))


def test_a_rewrite_without_calibrator_drops_the_old_one(clf, tmp_path):
    make_bundle(tmp_path, clf)
    bundle = make_bundle(tmp_path, clf, calibrator=None)
    assert bundle.calibrator is None and not (tmp_path / "calibrator.json").exists()
    assert set(bundle.files) == {"policy.json"}


@pytest.mark.parametrize("name", ["manifest.json", "policy.json", "../x.json", "sub/x.json", "notes.txt"])
def test_extra_payload_names_are_checked(clf, tmp_path, name):
    with pytest.raises(ConfidentlyError, match="reserved or not a plain file name|must be a .json"):
        make_bundle(tmp_path, clf, extra_json={name: {}})
    assert not (tmp_path / "manifest.json").exists()


def edit_manifest(folder, change) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("breakage,message", [
    (lambda f: (f / "calibrator.json").write_text((f / "calibrator.json").read_text().replace("1", "2")),
     "calibrator.json changed since the bundle was written"),
    (lambda f: (f / "canary.json").write_text("{}"), "canary.json changed since the bundle was written"),
    (lambda f: (f / "policy.json").unlink(), "policy.json is missing"),
    (lambda f: edit_manifest(f, lambda m: m["files"].pop("policy.json")), "lists no policy.json"),
    (lambda f: edit_manifest(f, lambda m: m.pop("files")), "has no 'files' list"),
    (lambda f: edit_manifest(f, lambda m: m["files"].update({"../../etc/passwd": "0" * 64})), "not a plain file"),
    (lambda f: edit_manifest(f, lambda m: m["files"].update({"policy.json": "nope"})), "not a sha256"),
    (lambda f: edit_manifest(f, lambda m: m.update(version=2)), "version 2 is not supported"),
    (lambda f: edit_manifest(f, lambda m: m.update(model={"name": "x"})), "'model' must hold"),
    (lambda f: (f / "manifest.json").write_text("{\n  oops"), "manifest.json:2: not valid JSON"),
    (lambda f: (f / "manifest.json").unlink(), "has no manifest.json: not a calibration bundle"),
])
def test_a_broken_bundle_is_one_clear_error(clf, tmp_path, breakage, message):
    make_bundle(tmp_path, clf, extra_json={"canary.json": {"texts": TEXTS}})
    breakage(tmp_path)
    with pytest.raises(ArtifactError, match=message) as caught:
        read_bundle(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_bundle_for_other_weights_or_another_task_is_refused(clf, tmp_path, tiny_model_dir):
    make_bundle(tmp_path / "foreign", clf, model=ModelIdentity("other-model", "transformers", "9" * 64))
    with pytest.raises(BundleMismatchError) as caught:
        CalibratedClassifier(clf, bundle=tmp_path / "foreign")
    message = str(caught.value)  # names both models
    assert "fitted on other-model (weights 999999999999…, no adapter)" in message
    assert f"applied to {clf.backend.model_name} (weights {clf.backend.weights_id[:12]}…, no adapter)" in message

    triage = Task("triage", "Is it good? {text}", (Label("bad", ("no",)), Label("good", ("yes",))))
    make_bundle(tmp_path / "triage", clf, task=triage)
    with pytest.raises(BundleMismatchError, match=f"fitted for task 'triage' \\(fingerprint "
                                                  f"{task_fingerprint(triage, None)}, labels bad, good\\) but is "
                                                  "applied to task 'sentiment'"):
        CalibratedClassifier(clf, bundle=tmp_path / "triage")
    make_bundle(tmp_path / "chat", clf, chat=False)  # same task, other prompt: no chat template
    with pytest.raises(BundleMismatchError, match="fitted for task 'sentiment'"):
        CalibratedClassifier(clf, bundle=tmp_path / "chat")


def test_a_calibrator_for_another_label_count_is_refused(clf, tmp_path):
    three = Task("three", "{text}", (Label("a", ("no",)), Label("b", ("maybe",)), Label("c", ("yes",))))
    with pytest.raises(ConfidentlyError, match="fitted on 2 classes, the task has 3"):
        make_bundle(tmp_path, clf, task=three)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_bundle_applied_in_another_precision_warns(clf, tmp_path, tiny_model_dir, recwarn):
    from confidently.backends.transformers_backend import TransformersBackend

    make_bundle(tmp_path / "fp32", clf)
    assert read_bundle(tmp_path / "fp32").model.dtype == "float32"
    CalibratedClassifier(clf, bundle=tmp_path / "fp32")
    assert not [w for w in recwarn if issubclass(w.category, PrecisionMismatchWarning)]

    invariant = Classifier(backend=TransformersBackend(str(tiny_model_dir), device="cpu", dtype="bf16-invariant"))
    with pytest.warns(PrecisionMismatchWarning, match="fitted on float32 scores but is applied to "
                                                      "bfloat16-invariant scores"):
        calibrated = CalibratedClassifier(invariant, bundle=tmp_path / "fp32")
    assert calibrated.predict_proba(TEXTS).shape == (len(TEXTS), 2)  # a warning, not a refusal
    make_bundle(tmp_path / "bf16", invariant)
    assert read_bundle(tmp_path / "bf16").model.dtype == "bfloat16-invariant"
