"""Training on the tiny model: it learns, the saved adapter reloads exactly, resume is exact, saving is atomic."""

import errno
import json
import os
import shutil
import stat

import numpy as np
import pytest
import safetensors.torch
import torch
from safetensors.torch import load_file

from confidently.backends.transformers_backend import TransformersBackend
from confidently.scoring.classifier import Classifier
from confidently.errors import ArtifactError, ConfidentlyError, DataError
from confidently.files import sha256_file
from confidently.bundle.bundle import read_bundle
from confidently.finetune import finetune
from confidently.finetune.artifacts import atomic_folder
from confidently.finetune.checkpoint import checkpoint_dir
from confidently.finetune.data import answer_targets, collate, encode_examples
from confidently.finetune.model import answer_logits, training_adapter
from confidently.tasks.task import SENTIMENT


def test_training_forward_is_the_scoring_forward(backend, separable, tiny_config):
    """With the fresh adapter (its B matrices are zero) training logits equal the scorer's."""
    classifier = Classifier(backend=backend)
    model_before = backend.model
    data = separable(6, seed=5)
    encoded = encode_examples(classifier, data, answer_targets(classifier, data.texts))
    with training_adapter(backend, tiny_config(), seed=0) as model:
        model.eval()
        with torch.no_grad():
            batch = collate(encoded, range(6), backend.pad_id)
            first = [batch.keep - len(a) for a in encoded.answers]
            logits = answer_logits(model, batch, encoded.prefix, backend._cache_kwarg)[torch.arange(6), first]
    expected = backend.next_token_logprobs([classifier.prompt(t) for t in data.texts], shared_prefix=classifier.prefix)
    np.testing.assert_allclose(torch.log_softmax(logits, -1).cpu().numpy(), expected, atol=1e-5)
    assert backend.model is model_before  # the training adapter is gone again


def test_the_tiny_model_learns_a_separable_task(backend, trained, separable):
    history = trained.manifest["validation"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 2
    assert trained.manifest["validation"]["loss"] < history[0]["loss"] / 2
    held_out = separable(80, seed=1)
    y = held_out.label_indices(SENTIMENT.label_names)
    classifier = Classifier(backend=backend)
    base_accuracy = np.mean(classifier.score(held_out.texts).prediction == y)
    backend.load_adapter(trained.path, name="learned")
    try:
        tuned_accuracy = np.mean(classifier.score(held_out.texts).prediction == y)
    finally:
        backend.set_adapter(None)
    assert base_accuracy <= 0.6 and tuned_accuracy >= 0.95


def test_saved_adapter_reloads_to_identical_scores(trained, tiny_model_dir):
    fresh = Classifier(model=str(tiny_model_dir), adapter=str(trained.path), dtype="float32")
    reloaded = fresh.score(trained.splits.calibration.texts).probs
    np.testing.assert_allclose(reloaded, trained.calibration_probs, atol=1e-5)


def test_manifest_and_peft_files(trained, backend, separable):
    bundle = read_bundle(trained.path)  # also checks every file's sha256
    manifest = bundle.manifest
    assert manifest["format"] == "confidently.bundle" and manifest["version"] == 1 and bundle.is_adapter
    assert manifest["model"]["weights_id"] == backend.weights_id
    assert manifest["model"]["adapter_sha256"] == manifest["files"]["adapter_model.safetensors"]
    assert manifest["fitted_on"]["rows_sha256"] == trained.splits.calibration.sha256()
    assert manifest["task"] == SENTIMENT.to_dict()
    assert manifest["training_data_sha256"] == separable(240, seed=0).sha256()
    assert [label["target"] for label in manifest["labels"]] == ["no", "yes"]
    assert set(manifest["files"]) == {"adapter_model.safetensors", "adapter_config.json", "calibrator.json",
                                      "policy.json", "canary.json", "reference.json", "calibration_rows.json",
                                      "conformal.json", "seen_texts.json"}
    # the prediction sets travel in the adapter bundle, fitted on the cross-fitted calibration scores
    assert bundle.prediction_sets.alpha == 0.1 and bundle.prediction_sets.counts_ == {
        "all": len(trained.splits.calibration)}
    assert bundle.decision_rule == "threshold" and manifest["calibration"]["prediction_sets"]["guarantee"]
    assert {"torch", "transformers", "peft"} <= set(manifest["library_versions"])
    for key in ("hyperparameters", "validation", "calibration", "created", "splits"):
        assert key in manifest
    config = json.loads((trained.path / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 8 and config["inference_mode"] is True
    weights = load_file(str(trained.path / "adapter_model.safetensors"))
    assert weights and all(k.startswith("base_model.model.") and ".lora_" in k for k in weights)


def test_the_bundle_carries_the_production_loops_payloads(trained, tiny_model_dir):
    """Canary, reference and calibration rows come from the calibration split as scored with the trained
    adapter, and the saved adapter re-scores the canary as recorded."""
    from confidently.monitoring.canary import Canary
    from confidently.monitoring import Reference
    from confidently.feedback.recalibration import CalibrationRows

    bundle = read_bundle(trained.path)
    rows = CalibrationRows.from_bundle(bundle)
    np.testing.assert_allclose(rows.probs, trained.calibration_probs, atol=1e-12)
    assert rows.truncation_known and rows.truncated.shape == (len(trained.splits.calibration),)
    canary = Canary.from_bundle(bundle)
    texts = list(trained.splits.calibration.texts)
    np.testing.assert_allclose(canary.probs, trained.calibration_probs[[texts.index(t) for t in canary.texts]],
                               atol=1e-12)
    fresh = Classifier(model=str(tiny_model_dir), adapter=str(trained.path), dtype="float32")
    assert canary.check(fresh.score(list(canary.texts)).probs).passed
    assert Reference.from_bundle(bundle).n == len(texts)


def test_the_bundle_records_the_training_validation_and_calibration_texts(trained):
    """``score`` can then tell rows the adapter was trained on from unseen ones (seen_texts.json, hash-checked)."""
    from confidently.bundle.seen import SEEN_FILE, SeenTexts, fingerprint

    bundle = read_bundle(trained.path)
    seen = SeenTexts.from_bundle(bundle)
    assert SEEN_FILE in bundle.files
    for role, rows in (("training", trained.splits.train), ("validation", trained.splits.validation),
                       ("calibration", trained.splits.calibration)):
        assert seen.roles[role] == {fingerprint(t) for t in rows.texts} and len(rows) > 0
    overlap = seen.overlap([trained.splits.train.texts[0], "a text no split holds"])
    assert overlap.seen.tolist() == [True, False] and overlap.by_role["training"] == 1


def test_adapter_for_other_base_weights_is_refused(trained, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    changed = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        changed.lm_head.weight.mul_(0.5)
    changed.save_pretrained(tmp_path / "other")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "other")
    other = TransformersBackend(str(tmp_path / "other"), dtype="float32")
    with pytest.raises(ArtifactError, match="was fitted on .* but is applied to"):
        other.load_adapter(trained.path)


def _weights(folder):
    return load_file(str(folder / "adapter_model.safetensors"))


def test_resume_continues_from_the_saved_step(backend, separable, tiny_config, tmp_path):
    data = separable(200, seed=2)
    config = tiny_config(max_steps=8, eval_every=3, checkpoint_every=2)
    whole = finetune(data, tmp_path / "whole", config, backend=backend, progress=False)

    def interrupt(step):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(data, tmp_path / "resumed", config, backend=backend, progress=False, on_step=interrupt)
    state = json.loads((checkpoint_dir(tmp_path / "resumed") / "state.json").read_text())
    assert state["progress"]["step"] == 5 and not (tmp_path / "resumed").exists()
    with pytest.raises(ConfidentlyError, match="pass --resume"):
        finetune(data, tmp_path / "resumed", config, backend=backend, progress=False)
    with pytest.raises(ArtifactError, match="other settings"):
        finetune(data, tmp_path / "resumed", tiny_config(max_steps=9, eval_every=3), backend=backend,
                 progress=False, resume=True)
    steps = []
    resumed = finetune(data, tmp_path / "resumed", config, backend=backend, progress=False, resume=True,
                       on_step=steps.append)
    assert steps == [6, 7, 8]
    expected = whole.manifest["validation"]["history"]
    if backend.device.startswith("cuda"):
        # CUDA's backward kernels are not bitwise deterministic: two uninterrupted runs on an H200
        # already differed by 1e-7 relative at step 3, before any interruption.
        expected = [pytest.approx(entry, rel=1e-5) for entry in expected]
    assert resumed.manifest["validation"]["history"] == expected
    assert resumed.training.progress.examples_seen == whole.training.progress.examples_seen
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    assert not checkpoint_dir(tmp_path / "resumed").exists()


def test_out_of_disk_keeps_the_previous_adapter(trained, backend, separable, tiny_config, tmp_path, monkeypatch):
    out = tmp_path / "adapter"
    shutil.copytree(trained.path, out)
    before = {p.name: sha256_file(p) for p in out.iterdir()}

    real_save = safetensors.torch.save_file

    def full_disk_for_adapters(tensors, filename, *args, **kwargs):
        if filename.endswith("adapter_model.safetensors"):  # checkpoints still save
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk_for_adapters)
    with pytest.raises(ArtifactError, match="No space left on device.*previous adapter there is unchanged"):
        finetune(separable(200, seed=4), out, tiny_config(max_steps=2), backend=backend, progress=False)
    assert {p.name: sha256_file(p) for p in out.iterdir()} == before
    # no staging folder left; the finished run's checkpoint stays, so --resume only has to save again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "adapter.checkpoint"]


def test_saved_folder_is_readable_like_any_other(trained):
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(trained.path.stat().st_mode) == 0o777 & ~umask
    for path in trained.path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


def test_atomic_folder_failure_leaves_target(tmp_path):
    target = tmp_path / "folder"
    target.mkdir()
    (target / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as staging:
            (staging / "a.txt").write_text("new")
            raise RuntimeError("disk full")
    assert (target / "a.txt").read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    with atomic_folder(target) as staging:
        (staging / "b.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["b.txt"] and len(list(tmp_path.iterdir())) == 1


def test_unknown_labels_stop_training_before_it_starts(backend, tiny_config, tmp_path):
    from confidently.data import Dataset

    data = Dataset(["good film", "bad film", "ok film"], ["positive", "negative", "so-so"])
    with pytest.raises(DataError, match="does not know: 'so-so'"):
        finetune(data, tmp_path / "a", tiny_config(), backend=backend, progress=False)


def test_finetune_trains_every_prompt_of_an_ensemble_and_ships_its_combiner(backend, separable, tiny_config,
                                                                            tmp_path):
    # Was refused (an adapter trained one prompt); now every training text is asked each way the ensemble asks,
    # and the adapter's calibrator is the ensemble's combiner on every prompt's class masses through it.
    from dataclasses import replace

    from confidently.calibration.ensemble import PromptCombiner
    from confidently.decision.calibrated import CalibratedClassifier
    from confidently.feedback.recalibration import CalibrationRows

    other = replace(SENTIMENT, name="review", template="Movie review: {text}\nIs it positive?")
    task = tmp_path / "ensemble.json"
    task.write_text(json.dumps(replace(SENTIMENT, ensemble=(other,)).to_dict()))
    result = finetune(separable(240, seed=0), tmp_path / "a", tiny_config(task=str(task)), backend=backend,
                      progress=False)
    bundle = read_bundle(result.path)
    assert isinstance(bundle.calibrator, PromptCombiner) and [p.name for p in bundle.task.prompts] == [
        "sentiment", "review"]
    manifest = bundle.manifest
    assert manifest["prompts_trained"]["n_prompts"] == 2 and manifest["calibration"]["method"] == "ensemble"
    assert manifest["validation"]["history"][-1]["n"] == 2 * manifest["splits"]["sizes"]["validation"]
    rows = CalibrationRows.from_bundle(bundle)  # kept for recalibration: both prompts' class masses
    assert rows.features.shape == (manifest["splits"]["sizes"]["calibration"], 2 * 2)
    held_out = separable(80, seed=1)
    y = held_out.label_indices(SENTIMENT.label_names)
    backend.load_adapter(result.path, name="ensemble")
    try:
        for prompt in bundle.task.prompts:  # each prompt alone learned the task through the adapter
            assert np.mean(Classifier(backend=backend, task=prompt).score(held_out.texts).prediction == y) >= 0.95
        calibrated = CalibratedClassifier(Classifier(backend=backend, task=bundle.task), bundle=bundle)
        probs = calibrated.predict_proba(list(held_out.texts))
        masses = Classifier(backend=backend, task=bundle.task).score(held_out.texts, hidden=True).hidden
    finally:
        backend.set_adapter(None)
    np.testing.assert_allclose(probs, bundle.calibrator.predict_proba(masses), atol=1e-6)
    assert np.mean(probs.argmax(1) == y) >= 0.95
    # `compare` applies the adapter's own combiner to every prompt's class masses of the test rows
    from confidently.workflows.comparison import compare

    shipped = compare(held_out, result.path, backend=backend, progress=False).shipped
    assert shipped["calibrated"] and shipped["metrics"]["accuracy"]["value"] >= 0.95


def test_an_adapter_is_given_a_prompt_ensemble_by_evaluate(trained, tiny_model_dir, separable, tmp_path):
    # An adapter fine-tuned on the plain task can be given prompts afterwards: `evaluate --adapter --prompts`
    # scores every prompt through the adapter and lets the prompts' combiner compete.
    from typer.testing import CliRunner

    from confidently.cli.app import app
    from confidently.data import save_dataset

    save_dataset(separable(160, seed=7), tmp_path / "held.jsonl")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"name": "plain", "template": "{text}\nSentiment, positive or negative?",
                                   "words": {"negative": ["negative"], "positive": ["positive"]}}) + "\n")
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "held.jsonl"), "--adapter",
                                      str(trained.path), "--model", str(tiny_model_dir), "--prompts", str(prompts),
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    bundle = read_bundle(tmp_path / "run")
    assert [p.name for p in bundle.task.prompts] == ["sentiment", "plain"]
    assert bundle.model.adapter_sha256 == read_bundle(trained.path).model.adapter_sha256
