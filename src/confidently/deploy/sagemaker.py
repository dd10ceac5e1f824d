"""SageMaker: fine-tune in a training job, serve many adapters on one endpoint, delete it all.

Each operation is first built as a list of :class:`~confidently.deploy.calls.Call` (printed as-is by
``--dry-run``) and then run in order. Resource names derive from the endpoint's name:
``<endpoint>-config``, ``<endpoint>-base`` (model and base inference component) and
``<endpoint>-<adapter>`` (one inference component per adapter folder). Every adapter's manifest,
calibrator and policy are uploaded beside its weights, and a deployment record
(``<prefix>/endpoints/<endpoint>/deployment.json``) tells ``sagemaker classify`` where they are.
Facts about the AWS APIs and the LMI container, and which are unverified, are in docs/sagemaker.md.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confidently.deploy.calls import Call, Runner
from confidently.deploy.packaging import (ENTRY_SCRIPT, AdapterFolder, check_adapters, project_root, source_files,
                                          tar_gz)
from confidently.deploy.settings import SageMakerSettings, check_name
from confidently.errors import BackendError, ConfigError
from confidently.models.registry import REGISTRY

VARIANT = "AllTraffic"
RECORD_FORMAT = "confidently.sagemaker-deployment"
TASK_FILE = "confidently_task.json"
# The LMI container runs vLLM in async mode and answers a {"prompt": ...} body with vLLM's OpenAI
# completion JSON (logprobs included); OPTION_<ARG> passes engine arguments to vLLM.
LMI_ASYNC = {
    "OPTION_ASYNC_MODE": "true",
    "OPTION_ROLLING_BATCH": "disable",
    "OPTION_ENTRYPOINT": "djl_python.lmi_vllm.vllm_async_service",
}


def make_clients(settings: SageMakerSettings) -> dict[str, Any]:
    """boto3 clients for sagemaker, sagemaker-runtime and s3; credentials from boto3's standard chain."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    session = boto3.session.Session(region_name=settings.region)
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    try:
        return {name: session.client(name, config=config) for name in ("sagemaker", "sagemaker-runtime", "s3")}
    except NoRegionError:
        raise ConfigError("no AWS region: pass --region, set CONFIDENTLY_SAGEMAKER_REGION or AWS_REGION") from None


def _put(settings: SageMakerSettings, key: str, body: bytes) -> Call:
    return Call("s3", "put_object", {"Bucket": settings.bucket, "Key": key, "Body": body})


# -- training ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingPlan:
    """A training job: the uploads and the CreateTrainingJob call, and where its output will land."""

    name: str
    calls: list[Call]
    model_artifact: str  # s3:// URI of model.tar.gz once the job completes


def training_plan(settings: SageMakerSettings, *, data: str, model: str, task: str = "sentiment",
                  job_name: str | None = None, finetune_args: Sequence[str] = (), source: Path | None = None,
                  install: str | None = None, now: _dt.datetime | None = None) -> TrainingPlan:
    """Upload the data (when local) and the code, then start a job that runs ``confidently finetune``.

    Parameters
    ----------
    data : a local JSONL/CSV file (uploaded) or an ``s3://`` URI of one.
    model, task : passed to ``confidently finetune`` (a local task ``.json`` travels in the tarball).
    finetune_args : further ``confidently finetune`` flags, e.g. ``["--epochs", "2"]``.
    source : this project's checkout to ship; default: the one this package runs from.
    install : a pip requirement to install instead of the shipped source (e.g. ``confidently==0.1.0``).
    """
    settings.require("role_arn", "bucket", "training_image")
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%d-%H%M%S")
    name = check_name("training job", job_name or f"confidently-finetune-{stamp}")
    calls: list[Call] = []
    if data.startswith("s3://"):
        data_uri, data_file = data, data.rstrip("/").rsplit("/", 1)[-1]
    else:
        path = Path(data)
        if not path.is_file():
            raise ConfigError(f"training data {path} does not exist")
        data_file = path.name
        calls.append(_put(settings, settings.key("training", name, "data", data_file), path.read_bytes()))
        data_uri = settings.s3_uri("training", name, "data") + "/"
    files: dict[str, bytes | Path] = {ENTRY_SCRIPT: Path(__file__).with_name("entry.py")}
    if install is None:
        root = source or project_root()
        if root is None or not (root / "pyproject.toml").is_file():
            raise ConfigError("cannot find confidently's source to ship: pass --source CHECKOUT, or "
                              "--install 'confidently==VERSION' to install it from a package index")
        files.update(source_files(root))
    if Path(task).suffix == ".json" and Path(task).is_file():
        files[TASK_FILE], task = Path(task), TASK_FILE
    code_key = settings.key("training", name, "source", "sourcedir.tar.gz")
    calls.append(_put(settings, code_key, tar_gz(files)))
    hyperparameters: dict[str, Any] = {
        "sagemaker_program": ENTRY_SCRIPT,
        "sagemaker_submit_directory": f"s3://{settings.bucket}/{code_key}",
        "model": model, "task": task, "data_file": data_file, "finetune_args": list(finetune_args),
        "packages": list(REGISTRY[model].packages) if model in REGISTRY else [],
    }
    optional = {"install": install, "region": settings.region, "hf_token_secret": settings.hf_token_secret}
    hyperparameters.update({key: value for key, value in optional.items() if value})
    request = {
        "TrainingJobName": name,
        "RoleArn": settings.role_arn,
        "AlgorithmSpecification": {"TrainingImage": settings.training_image, "TrainingInputMode": "File"},
        # Framework containers JSON-decode every value, as the SageMaker Python SDK encodes them.
        "HyperParameters": {key: json.dumps(value) for key, value in hyperparameters.items()},
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": data_uri, "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": settings.s3_uri("training", "output")},
        "ResourceConfig": {"InstanceType": settings.training_instance_type, "InstanceCount": 1,
                           "VolumeSizeInGB": settings.training_volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_s},
    }
    calls.append(Call("sagemaker", "create_training_job", request))
    return TrainingPlan(name, calls, settings.s3_uri("training", "output", name, "output", "model.tar.gz"))


# -- deployment -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Names:
    """The SageMaker resource names of one endpoint's deployment."""

    endpoint: str

    def __post_init__(self) -> None:
        check_name("endpoint", self.endpoint)

    @property
    def config(self) -> str:
        return f"{self.endpoint}-config"

    @property
    def base(self) -> str:
        return f"{self.endpoint}-base"

    def adapter(self, name: str) -> str:
        return check_name("adapter inference component", f"{self.endpoint}-{name}")

    def record_key(self, settings: SageMakerSettings) -> str:
        return settings.key("endpoints", self.endpoint, "deployment.json")


def container_environment(settings: SageMakerSettings, model_id: str) -> dict[str, str]:
    """The LMI container's environment: the base model, LoRA serving, logprob limits, async mode."""
    return {
        "HF_MODEL_ID": model_id,
        "OPTION_ENABLE_LORA": "true",
        "OPTION_MAX_LORAS": str(settings.max_loras),
        "OPTION_MAX_CPU_LORAS": str(settings.max_cpu_loras),
        "OPTION_MAX_LORA_RANK": str(settings.max_lora_rank),
        "OPTION_MAX_LOGPROBS": str(settings.max_logprobs),
        "OPTION_TENSOR_PARALLEL_DEGREE": settings.tensor_parallel_degree,
        **LMI_ASYNC,
    }


def deploy_plan(settings: SageMakerSettings, endpoint: str, adapters: Sequence[AdapterFolder]) -> list[Call]:
    """Uploads, model, endpoint config, endpoint, base component, one component per adapter, record."""
    settings.require("role_arn", "bucket", "inference_image")
    names = Names(endpoint)
    base_model = check_adapters(list(adapters), settings.max_lora_rank)
    model_id = settings.base_model_id or adapters[0].base_checkpoint
    if not model_id:
        raise ConfigError(f"the adapters name no base checkpoint (adapter_config.json base_model_name_or_path): "
                          f"pass --base-model-id (a hub id or s3:// prefix of {base_model}'s weights)")
    calls: list[Call] = []
    record: dict[str, Any] = {"format": RECORD_FORMAT, "version": 1, "endpoint": endpoint, "base_model": base_model,
                              "base_model_id": model_id, "base_component": names.base, "adapters": {}}
    for adapter in adapters:
        folder = settings.key("endpoints", endpoint, "adapters", adapter.name)
        calls.append(_put(settings, f"{folder}/adapter.tar.gz", adapter.weights_tarball()))
        sidecars = {}
        for file_name, path in adapter.sidecars().items():
            calls.append(_put(settings, f"{folder}/{file_name}", path.read_bytes()))
            sidecars[file_name] = f"{folder}/{file_name}"
        record["adapters"][adapter.name] = {"component": names.adapter(adapter.name),
                                            "artifact": f"s3://{settings.bucket}/{folder}/adapter.tar.gz",
                                            "files": sidecars}
    timeouts = {"ModelDataDownloadTimeoutInSeconds": settings.download_timeout_s,
                "ContainerStartupHealthCheckTimeoutInSeconds": settings.startup_timeout_s}
    calls += [
        Call("sagemaker", "create_model", {
            "ModelName": names.base, "ExecutionRoleArn": settings.role_arn,
            "PrimaryContainer": {"Image": settings.inference_image,
                                 "Environment": container_environment(settings, model_id)}}),
        Call("sagemaker", "create_endpoint_config", {
            "EndpointConfigName": names.config, "ExecutionRoleArn": settings.role_arn,
            "ProductionVariants": [{
                "VariantName": VARIANT, "InstanceType": settings.inference_instance_type,
                "InitialInstanceCount": max(1, settings.min_instances),
                "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": settings.min_instances,
                                           "MaxInstanceCount": settings.max_instances},
                "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}]}),
        Call("sagemaker", "create_endpoint", {"EndpointName": endpoint, "EndpointConfigName": names.config},
             wait="endpoint_in_service"),
        Call("sagemaker", "create_inference_component", {
            "InferenceComponentName": names.base, "EndpointName": endpoint, "VariantName": VARIANT,
            "Specification": {"ModelName": names.base, "StartupParameters": timeouts,
                              "ComputeResourceRequirements": {
                                  "NumberOfAcceleratorDevicesRequired": settings.accelerators,
                                  "MinMemoryRequiredInMb": settings.memory_mb}},
            "RuntimeConfig": {"CopyCount": settings.copy_count}}, wait="component_in_service"),
    ]
    for adapter in adapters:
        # An adapter component shares the base component's compute: no resources of its own.
        calls.append(Call("sagemaker", "create_inference_component", {
            "InferenceComponentName": names.adapter(adapter.name), "EndpointName": endpoint,
            "Specification": {"BaseInferenceComponentName": names.base,
                              "Container": {"ArtifactUrl": record["adapters"][adapter.name]["artifact"]}}},
            wait="component_in_service"))
    # Written last: classify finds only deployments whose components all came up.
    calls.append(_put(settings, names.record_key(settings), json.dumps(record, indent=2).encode()))
    return calls


# -- deletion ---------------------------------------------------------------------------------------
def _components(runner: Runner, endpoint: str) -> list[dict[str, Any]]:
    """Descriptions of every inference component on ``endpoint``."""
    names, token = [], None
    while True:
        page = runner.call("sagemaker", "list_inference_components", EndpointNameEquals=endpoint,
                           **({"NextToken": token} if token else {}))
        names += [c["InferenceComponentName"] for c in page["InferenceComponents"]]
        token = page.get("NextToken")
        if not token:
            break
    found = (runner.describe("describe_inference_component", "InferenceComponentName", n) for n in names)
    return [d for d in found if d is not None]


def delete_plan(runner: Runner, settings: SageMakerSettings, endpoint: str) -> list[Call]:
    """What deleting ``endpoint`` takes, found by reading its current state (reads run even in a dry run).

    Adapter components go first (the base cannot go while they use it), then base components, the
    endpoint, its config, the models the base components ran, and the deployment record.
    """
    names = Names(endpoint)
    description = runner.describe("describe_endpoint", "EndpointName", endpoint)
    if description is None:
        raise BackendError(f"there is no endpoint named {endpoint!r} in this account and region")
    components = _components(runner, endpoint)
    adapters = [c for c in components if c.get("Specification", {}).get("BaseInferenceComponentName")]
    bases = [c for c in components if c not in adapters]
    models = sorted({c["Specification"]["ModelName"] for c in bases if c.get("Specification", {}).get("ModelName")})
    calls = [Call("sagemaker", "delete_inference_component", {"InferenceComponentName": c["InferenceComponentName"]},
                  wait="component_gone") for c in [*adapters, *bases]]
    calls.append(Call("sagemaker", "delete_endpoint", {"EndpointName": endpoint}, wait="endpoint_gone"))
    if description.get("EndpointConfigName"):
        calls.append(Call("sagemaker", "delete_endpoint_config", {"EndpointConfigName": description["EndpointConfigName"]}))
    calls += [Call("sagemaker", "delete_model", {"ModelName": model}) for model in models]
    if settings.bucket:
        calls.append(Call("s3", "delete_object", {"Bucket": settings.bucket, "Key": names.record_key(settings)}))
    return calls
