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
                 weights_id: str = "a" * 64, calibrated: bool = True, threshold: float | None = 0.8,
                 extra_json: dict | None = None, metadata: dict | None = None) -> Path:
    """An adapter folder shaped like `confidently finetune`'s output: a calibration bundle around PEFT
    files (the weights are placeholder bytes). ``threshold=None`` is a policy that reviews everything;
    ``extra_json`` adds payloads (a canary); ``metadata`` manifest keys (a decision rule)."""
    from confidently.bundle.bundle import ADAPTER_CONFIG_FILE, WEIGHTS_FILE, ModelIdentity, write_bundle
    from confidently.calibration import PlattCalibrator
    from confidently.tasks.task import SENTIMENT
    from confidently.decision.policy import DecisionPolicy

    calibrator = None
    if calibrated:
        rng = np.random.default_rng(0)
        score = rng.uniform(0.2, 0.9, 200)
        y = (rng.uniform(size=200) < score).astype(int)
        calibrator = PlattCalibrator().fit(np.column_stack([1 - score, score]), y)
    config = {"r": rank, "lora_alpha": 16, "peft_type": "LORA", "base_model_name_or_path": HUB_ID}
    write_bundle(folder, model=ModelIdentity(base_model, "transformers", weights_id, "float32"), task=SENTIMENT,
                 chat=None, calibrator=calibrator, fitted_on={"rows_sha256": "0" * 64, "n_rows": 200},
                 policy=DecisionPolicy(threshold=threshold, target_accuracy=0.95, certified=threshold is not None,
                                       method="test"),
                 extra_json=extra_json, metadata=metadata, extra_files={WEIGHTS_FILE: lambda path: path.write_bytes(b"placeholder weights " + folder.name.encode()),
                              ADAPTER_CONFIG_FILE: lambda path: path.write_text(json.dumps(config))})
    return folder
