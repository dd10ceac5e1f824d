"""Classifying with an adapter served on SageMaker: raw class probabilities from the endpoint's
logprobs, then the adapter's own calibration bundle, applied here through the core's decision path
(:class:`confidently.decision.calibrated.CalibratedClassifier`), exactly as ``classify`` and ``serve`` apply it.

The requests are the openai backend's (``{"prompt": ..., "max_tokens": 1, "logprobs": k}``, or
``messages`` when no tokenizer renders the chat template), sent with ``invoke_endpoint`` to the
adapter's inference component; the LMI container answers with vLLM's OpenAI-shaped JSON.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confidently.bundle.bundle import Bundle, read_bundle
from confidently.deploy.calls import Runner, aws_error
from confidently.deploy.sagemaker import RECORD_FORMAT, Names
from confidently.deploy.settings import SageMakerSettings
from confidently.errors import ArtifactError, BackendError, ConfigError
from confidently.types import Prediction

if TYPE_CHECKING:
    from confidently.decision.calibrated import CalibratedClassifier


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
    """What classify needs about one deployed adapter: its component and its calibration bundle."""

    name: str
    component: str
    bundle: Bundle


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
    """The adapter's bundle, from a local adapters folder or from S3 (via the deployment record).

    Its JSON files are checked against the manifest's hashes; the weights live on the endpoint and
    need not be here.
    """
    names = Names(endpoint)
    if adapters_dir is not None:
        bundle = read_bundle(Path(adapters_dir) / name, require_adapter_files=False)
        return RemoteAdapter(name, names.adapter(name), bundle)
    settings.require("bucket")
    record = _fetch_record(runner, settings, names)
    if name not in record["adapters"]:
        raise ConfigError(f"endpoint {endpoint} serves no adapter {name!r}; it serves: "
                          f"{', '.join(sorted(record['adapters'])) or 'none'}")
    entry = record["adapters"][name]
    with tempfile.TemporaryDirectory(prefix=f"confidently-{name}-") as temporary:
        folder = Path(temporary)
        for file_name, key in entry["files"].items():
            if not isinstance(file_name, str) or Path(file_name).name != file_name or file_name.startswith("."):
                raise ArtifactError(f"the deployment record of {endpoint} lists {file_name!r}, not a plain file name")
            body = runner.call("s3", "get_object", Bucket=settings.bucket, Key=key)["Body"].read()
            (folder / file_name).write_bytes(body)
        bundle = read_bundle(folder, require_adapter_files=False)
    return RemoteAdapter(name, entry["component"], bundle)


def remote_classifier(runner: Runner, settings: SageMakerSettings, endpoint: str, adapter: str, *,
                      adapters_dir: Path | None = None, tokenizer: str | None = "auto",
                      max_concurrency: int = 4) -> tuple[Bundle, CalibratedClassifier]:
    """A deployed adapter's bundle, and a classifier that scores on its endpoint with that bundle applied.

    ``tokenizer`` (default: the adapter's base model, when it is a registry model installed here)
    renders the same chat-template prompt the adapter was trained and calibrated on. The task and
    chat choice are the bundle's own; the endpoint's weights cannot be hashed from here, so the
    model check is the deployment record's (the component serving this adapter) and the canary's
    (``confidently canary --sagemaker``).
    """
    from confidently.backends.openai_backend import OpenAIBackend
    from confidently.scoring.classifier import Classifier
    from confidently.decision.calibrated import CalibratedClassifier

    found = find_adapter(runner, settings, endpoint, adapter, adapters_dir)
    bundle = found.bundle
    transport = SageMakerTransport(runner.clients["sagemaker-runtime"], endpoint, found.component,
                                   max_concurrency=max_concurrency)
    backend = OpenAIBackend(bundle.model.name, transport=transport, tokenizer=tokenizer)
    classifier = Classifier(task=bundle.task, backend=backend, chat=bundle.chat, scorer=bundle.scorer)
    calibrated = CalibratedClassifier.from_bundle(classifier, bundle, checked=False)
    if (column := calibrated.decides_per_slice) is not None:
        raise ArtifactError(f"adapter {adapter!r} decides by prediction sets fitted per {column}, but a text sent to "
                            f"the endpoint carries no {column} value, so none could be decided: deploy an adapter "
                            "fine-tuned with --decision-rule threshold")
    return bundle, calibrated


def classify_remote(runner: Runner, settings: SageMakerSettings, endpoint: str, adapter: str,
                    texts: Sequence[str], *, adapters_dir: Path | None = None, tokenizer: str | None = "auto",
                    max_concurrency: int = 4) -> list[Prediction]:
    """Classify ``texts`` with a deployed adapter and apply its calibrator and decision policy
    (see :func:`remote_classifier`)."""
    _, calibrated = remote_classifier(runner, settings, endpoint, adapter, adapters_dir=adapters_dir,
                                      tokenizer=tokenizer, max_concurrency=max_concurrency)
    return calibrated.classify_many(texts)
