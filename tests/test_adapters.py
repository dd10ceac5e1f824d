"""Adapters share one base model: switching is exact, and foreign adapters are refused."""

import json

import numpy as np
import pytest

from confidently.backends.transformers_backend import TransformersBackend
from confidently.bundle.bundle import (ADAPTER_CONFIG_FILE, WEIGHTS_FILE, BundleMismatchError, ModelIdentity,
                                       write_bundle)
from confidently.scoring.classifier import Classifier
from confidently.errors import ArtifactError
from confidently.tasks.task import SENTIMENT
from confidently.decision.policy import DecisionPolicy

TEXTS = ["the movie was great", "I hate it", "awful and boring"]


def make_adapter(model_dir, out, seed):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(out)
    return out


@pytest.fixture()
def backend(tiny_model_dir):
    return TransformersBackend(str(tiny_model_dir), dtype="float32")


def test_adapters_switch_on_one_base_model(backend, tiny_model_dir, tmp_path):
    clf = Classifier(backend=backend)
    base = clf.score(TEXTS).probs
    a = backend.load_adapter(make_adapter(tiny_model_dir, tmp_path / "a", 1))
    with_a = clf.score(TEXTS).probs
    backend.load_adapter(make_adapter(tiny_model_dir, tmp_path / "b", 2), activate=False)
    assert backend.active_adapter == a
    np.testing.assert_allclose(clf.score(TEXTS).probs, with_a, atol=1e-6)
    backend.set_adapter("b")
    with_b = clf.score(TEXTS).probs
    backend.set_adapter(None)
    np.testing.assert_allclose(clf.score(TEXTS).probs, base, atol=1e-6)
    assert np.abs(with_a - base).max() > 1e-3 and np.abs(with_b - with_a).max() > 1e-3
    backend.unload_adapter("a")
    with pytest.raises(ArtifactError, match="no adapter named 'a'"):
        backend.set_adapter("a")


def test_adapter_for_other_base_weights_is_refused(backend, tiny_model_dir, tmp_path):
    folder = make_adapter(tiny_model_dir, tmp_path / "foreign", 3)
    kept = lambda path: None  # noqa: E731  (PEFT has already written it)
    write_bundle(folder, model=ModelIdentity("other", "transformers", "0" * 64), task=SENTIMENT, chat=None,
                 calibrator=None, policy=DecisionPolicy(None, None, False, "test"),
                 fitted_on={"rows_sha256": "0" * 64, "n_rows": 0},
                 extra_files={WEIGHTS_FILE: kept, ADAPTER_CONFIG_FILE: kept})
    with pytest.raises(BundleMismatchError, match="was fitted on other \\(weights 000000000000…"):
        backend.load_adapter(folder)


def test_a_manifest_without_its_file_hashes_is_refused(backend, tiny_model_dir, tmp_path):
    folder = make_adapter(tiny_model_dir, tmp_path / "unlisted", 3)
    (folder / "manifest.json").write_text(json.dumps({"format": "confidently.bundle", "version": 1,
                                                      "model": {"name": "tiny", "backend": "transformers",
                                                                "weights_id": backend.weights_id}}))
    with pytest.raises(ArtifactError, match="has no 'files' list"):
        backend.load_adapter(folder)


def test_folder_without_adapter_files_is_refused(backend, tmp_path):
    with pytest.raises(ArtifactError, match="not a LoRA adapter"):
        backend.load_adapter(tmp_path)


def test_reloading_a_name_uses_the_new_weights(backend, tiny_model_dir, tmp_path):
    clf = Classifier(backend=backend)
    backend.load_adapter(make_adapter(tiny_model_dir, tmp_path / "a", 1), name="x")
    first = clf.score(TEXTS).probs
    backend.load_adapter(make_adapter(tiny_model_dir, tmp_path / "b", 2), name="x")
    second = clf.score(TEXTS).probs
    fresh = TransformersBackend(str(tiny_model_dir), dtype="float32")
    fresh.load_adapter(tmp_path / "b", name="x")
    np.testing.assert_allclose(second, Classifier(backend=fresh).score(TEXTS).probs, atol=1e-6)
    assert np.abs(second - first).max() > 1e-3


def test_unloading_the_last_adapter_returns_to_the_base_model(backend, tiny_model_dir, tmp_path):
    clf = Classifier(backend=backend)
    base = clf.score(TEXTS).probs
    backend.load_adapter(make_adapter(tiny_model_dir, tmp_path / "a", 1))
    backend.unload_adapter("a")
    np.testing.assert_allclose(clf.score(TEXTS).probs, base, atol=1e-6)
