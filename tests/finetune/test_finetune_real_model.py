"""A few LoRA steps on the real default model, end to end (marked ``model``: about a minute)."""

import json
import math

import numpy as np
import pytest

from confidently.data import generate_sentiment, split_dataset
from confidently.bundle.bundle import read_bundle
from confidently.finetune import FinetuneConfig, finetune


@pytest.mark.model
def test_a_few_lora_steps_on_the_default_model(default_classifier, tmp_path):
    from confidently.backends.transformers_backend import TransformersBackend
    from confidently.scoring.classifier import Classifier

    backend = default_classifier.backend
    splits = split_dataset(generate_sentiment(400, seed=1), seed=1)
    config = FinetuneConfig(max_steps=3, batch_size=4, grad_accum=1, max_validation=16, checkpoint_every=1)
    result = finetune(splits.train, tmp_path / "qwen", config, calibration=splits.calibration.subset(range(40)),
                      backend=backend, progress=False)
    assert backend.active_adapter is None and backend.fingerprint() == default_classifier.backend.fingerprint()
    manifest = read_bundle(result.path).manifest
    assert manifest["model"]["weights_id"] == backend.weights_id
    assert [label["target"] for label in manifest["labels"]] == ["no", "yes"]  # after "<|im_start|>assistant\n"
    assert manifest["validation"]["steps_run"] == 3 and math.isfinite(manifest["validation"]["loss"])
    adapter_config = json.loads((result.path / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert sorted(adapter_config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    # a fresh load of the saved folder scores exactly as the trained weights did in memory
    reloaded = Classifier(backend=TransformersBackend(backend.model_name, dtype="float32", adapter=str(result.path)))
    np.testing.assert_allclose(reloaded.score(result.splits.calibration.texts).probs, result.calibration_probs,
                               atol=1e-5)
