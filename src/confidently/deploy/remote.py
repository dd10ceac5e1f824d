"""Classifying with an adapter served on SageMaker: raw class probabilities from the endpoint's
logprobs, then the adapter's own calibrator and decision policy, applied here.

The requests are the openai backend's (``{"prompt": ..., "max_tokens": 1, "logprobs": k}``, or
``messages`` when no tokenizer renders the chat template), sent with ``invoke_endpoint`` to the
adapter's inference component; the LMI container answers with vLLM's OpenAI-shaped JSON.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from confidently.deploy.calls import Runner, aws_error
from confidently.deploy.sagemaker import RECORD_FORMAT, Names
from confidently.deploy.settings import SageMakerSettings
from confidently.errors import ArtifactError, BackendError, ConfigError


class SageMakerTransport:
    """Sends openai-backend request bodies to one inference component with ``invoke_endpoint``.

    The body carries no ``model``: the component (sent as a header by SageMaker) selects the adapter.
    botocore retries throttling and 5xx itself (standard retry mode, see ``make_clients``).
    """

    def __init__(self, runtime, endpoint: str, component: str, *, max_concurrency: int = 4):
        self.runtime = runtime
        self.endpoint = endpoint
        self.component = component
        self.max_concurrency = max_concurrency

    def post_many(self, path: str, bodies: Sequence[dict[str, Any]]) -> list[Any]:
        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(pool.map(self._invoke, bodies))

    def _invoke(self, body: dict[str, Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        payload = {key: value for key, value in body.items() if key != "model"}
        try:
            response = self.runtime.invoke_endpoint(
                EndpointName=self.endpoint, InferenceComponentName=self.component,
                ContentType="application/json", Accept="application/json", Body=json.dumps(payload))
        except (ClientError, BotoCoreError) as error:
            raise aws_error(error, f"invoke_endpoint({self.endpoint}, component {self.component})") from None
        raw = response["Body"].read()
        try:
            return json.loads(raw)
        except ValueError:
            raise BackendError(f"endpoint {self.endpoint} ({self.component}) answered with something that is "
                               f"not JSON: {raw[:200]!r}") from None

    def close(self) -> None:
        """Nothing to close: boto3 manages its connections."""


@dataclass(frozen=True)
class RemoteAdapter:
    """What classify needs about one deployed adapter: its component, task, base model and artifacts."""

    name: str
    component: str
    folder: Path  # holds manifest.json, and calibrator.json / policy.json when fitted
    manifest: dict[str, Any]


def _fetch_record(runner: Runner, settings: SageMakerSettings, names: Names) -> dict[str, Any]:
    key = names.record_key(settings)
    body = runner.call("s3", "get_object", Bucket=settings.bucket, Key=key)["Body"].read()
    try:
        record = json.loads(body)
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise ArtifactError(f"s3://{settings.bucket}/{key} is not a confidently deployment record")
    return record


def find_adapter(runner: Runner, settings: SageMakerSettings, endpoint: str, name: str,
                 adapters_dir: Path | None = None) -> RemoteAdapter:
    """The adapter's files, from a local adapters folder or from S3 (via the deployment record)."""
    names = Names(endpoint)
    if adapters_dir is not None:
        folder = Path(adapters_dir) / name
        if not (folder / "manifest.json").is_file():
            raise ArtifactError(f"{folder} holds no manifest.json: not an adapter made by `confidently finetune`")
        component = names.adapter(name)
    else:
        settings.require("bucket")
        record = _fetch_record(runner, settings, names)
        if name not in record["adapters"]:
            raise ConfigError(f"endpoint {endpoint} serves no adapter {name!r}; it serves: "
                              f"{', '.join(sorted(record['adapters'])) or 'none'}")
        entry = record["adapters"][name]
        component = entry["component"]
        folder = Path(tempfile.mkdtemp(prefix=f"confidently-{name}-"))
        for file_name, key in entry["files"].items():
            body = runner.call("s3", "get_object", Bucket=settings.bucket, Key=key)["Body"].read()
            (folder / file_name).write_bytes(body)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return RemoteAdapter(name, component, folder, manifest)


@dataclass(frozen=True)
class RemoteResult:
    """One text classified on SageMaker.

    ``confidence`` is the chosen label's calibrated probability when the adapter has a calibrator,
    else its raw share of the label mass; ``decision`` is the policy's (None without a policy).
    """

    text: str
    label: str
    confidence: float
    calibrated: bool
    probs: dict[str, float]
    calibrated_probs: dict[str, float] | None
    decision: str | None
    uncovered_mass: float
    label_may_be_hidden: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classify_remote(runner: Runner, settings: SageMakerSettings, endpoint: str, adapter: str,
                    texts: Sequence[str], *, adapters_dir: Path | None = None, tokenizer: str | None = "auto",
                    max_concurrency: int = 4) -> list[RemoteResult]:
    """Classify ``texts`` with a deployed adapter and apply its calibrator and decision policy.

    ``tokenizer`` (default: the adapter's base model, when it is a registry model installed here)
    renders the same chat-template prompt the adapter was trained and calibrated on.
    """
    from confidently.backends.openai_backend import OpenAIBackend
    from confidently.calibration import load_calibrator
    from confidently.classifier import Classifier
    from confidently.tasks import Task
    from confidently.thresholds import DecisionPolicy

    found = find_adapter(runner, settings, endpoint, adapter, adapters_dir)
    task = Task.from_dict(found.manifest["task"])
    transport = SageMakerTransport(runner.clients["sagemaker-runtime"], endpoint, found.component,
                                   max_concurrency=max_concurrency)
    backend = OpenAIBackend(found.manifest["base_model"], transport=transport, tokenizer=tokenizer)
    scores = Classifier(task=task, backend=backend).score(list(texts))
    labels, raw = task.label_names, scores.probs
    calibrator = policy = None
    if (found.folder / "calibrator.json").is_file():
        calibrator = load_calibrator(found.folder / "calibrator.json")
        if calibrator.n_classes_ != len(labels):
            raise ArtifactError(f"adapter {adapter}: its calibrator was fitted on {calibrator.n_classes_} classes, "
                                f"the task has {len(labels)}")
    if (found.folder / "policy.json").is_file():
        policy = DecisionPolicy.load(found.folder / "policy.json")
    calibrated = None if calibrator is None else calibrator.predict_proba(raw)
    final = raw if calibrated is None else calibrated
    chosen = final.argmax(axis=1)
    confidence = final[np.arange(len(texts)), chosen]
    decisions = [None] * len(texts) if policy is None else policy.decide(confidence).tolist()
    return [RemoteResult(
        text=text, label=labels[chosen[i]], confidence=float(confidence[i]), calibrated=calibrated is not None,
        probs=dict(zip(labels, raw[i].tolist())),
        calibrated_probs=None if calibrated is None else dict(zip(labels, calibrated[i].tolist())),
        decision=decisions[i], uncovered_mass=float(scores.uncovered_mass[i]),
        label_may_be_hidden=bool(scores.label_may_be_hidden[i]),
    ) for i, text in enumerate(texts)]
