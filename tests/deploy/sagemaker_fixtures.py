"""Constants and builders shared by the SageMaker tests (stub responses, adapter folders)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np

ROLE = "arn:aws:iam::111122223333:role/confidently-test"
BUCKET = "confidently-test-bucket"
TRAINING_IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:test"
LMI_IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/djl-inference:test"
HUB_ID = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
NOW = dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc)


def streaming(data: bytes | str):
    from botocore.response import StreamingBody

    data = data.encode() if isinstance(data, str) else data
    return StreamingBody(io.BytesIO(data), len(data))


def description(kind: str, name: str, status: str | None, **extra) -> dict:
    """A minimal valid DescribeEndpoint / DescribeInferenceComponent response."""
    arn = f"arn:aws:sagemaker:us-east-1:111122223333:{kind}/{name}"
    if kind == "endpoint":
        return {"EndpointName": name, "EndpointArn": arn, "EndpointStatus": status, "CreationTime": NOW,
                "LastModifiedTime": NOW, **extra}
    return {"InferenceComponentName": name, "InferenceComponentArn": arn, "EndpointName": "reviews",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:111122223333:endpoint/reviews",
            "CreationTime": NOW, "LastModifiedTime": NOW,
            **({"InferenceComponentStatus": status} if status else {}), **extra}


def make_adapter(folder: Path, *, base_model: str = "qwen2.5-coder-0.5b-instruct", rank: int = 8,
                 weights_id: str = "a" * 64, calibrated: bool = True, threshold: float | None = 0.8) -> Path:
    """An adapter folder shaped like `confidently finetune`'s output (weights are placeholder bytes)."""
    from confidently.calibration import PlattCalibrator
    from confidently.tasks import SENTIMENT
    from confidently.thresholds import DecisionPolicy

    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"placeholder weights " + folder.name.encode())
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 16, "peft_type": "LORA",
                                                            "base_model_name_or_path": HUB_ID}))
    (folder / "manifest.json").write_text(json.dumps({"format": "confidently.adapter", "version": 1,
                                                      "base_model": base_model, "base_weights_id": weights_id,
                                                      "task": SENTIMENT.to_dict()}))
    if calibrated:
        rng = np.random.default_rng(0)
        score = rng.uniform(0.2, 0.9, 200)
        y = (rng.uniform(size=200) < score).astype(int)
        PlattCalibrator().fit(np.column_stack([1 - score, score]), y).save(folder / "calibrator.json")
    if threshold is not None:
        DecisionPolicy(threshold=threshold, target_accuracy=0.95, certified=True, method="test").save(
            folder / "policy.json")
    return folder
