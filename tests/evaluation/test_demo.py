"""The demo pipeline end to end on the tiny in-process model, with the fine-tuning stage."""

import json

from confidently.scoring.classifier import Classifier
from confidently.workflows.evaluation import EvaluationConfig
from confidently.finetune import FinetuneConfig
from confidently.workflows.pipeline import run_demo


def test_demo_with_finetune_stage(tiny_model_dir, tmp_path):
    from confidently.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(str(tiny_model_dir), dtype="float32")
    clf = Classifier(backend=backend, batch_size=16)
    config = EvaluationConfig(budget_sizes=(50,), budget_repeats=2, n_resamples=100,
                              methods=("platt", "temperature", "contextual+platt"))
    result = run_demo(tmp_path, clf=clf, n=600, eval_size=80, seed=3, config=config, progress=False,
                      finetune_config=FinetuneConfig(model=str(tiny_model_dir), max_steps=2, batch_size=8,
                                                     grad_accum=1, seed=3))
    for name in ("report", "metrics", "summary", "calibrator", "policy", "compare_report", "compare_metrics"):
        assert result.paths[name].exists(), name
    for split in ("train", "calibration", "test"):
        assert (tmp_path / "data" / f"{split}.jsonl").exists()
    manifest = json.loads((tmp_path / "adapter" / "manifest.json").read_text())
    assert manifest["model"]["weights_id"] == backend.weights_id
    metrics = json.loads(result.paths["metrics"].read_text())
    assert metrics["headline"]["n_test"] == 80
