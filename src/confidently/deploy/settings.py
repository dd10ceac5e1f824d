"""Everything account- or region-specific about SageMaker, from a file, the environment or flags.

Nothing here has an account-specific default: the role, bucket and container images must be given.
Sources, later ones winning: the defaults below, a TOML or JSON file (``--config`` or
``$CONFIDENTLY_SAGEMAKER_CONFIG``), environment variables ``CONFIDENTLY_SAGEMAKER_<FIELD>`` (e.g.
``CONFIDENTLY_SAGEMAKER_BUCKET``), then command-line flags. Credentials are never settings: boto3
finds them through its standard chain (environment, ``~/.aws``, SSO, instance role).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from confidently.errors import ConfigError

ENV_PREFIX = "CONFIDENTLY_SAGEMAKER_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
# SageMaker resource names: letters, digits and inner hyphens, at most 63 characters.
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
# Settings whose command-line flag is not simply --<name-with-dashes>.
FLAGS = {"role_arn": "--role", "training_image": "--image", "inference_image": "--image"}
# An IAM role ARN as SageMaker's API takes it (botocore's RoleArn shape: arn:aws[a-z-]*:iam::<12 digits>:role/...,
# at most 2048 characters): a partition, a 12-digit account, then the role's name (at most 64 characters) after an
# optional path. The message names the common partitions; the isolated ones (aws-iso, ...) are let through too.
_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.ASCII)
ROLE_ARN_FORM = "arn:aws:iam::<12-digit account>:role/<name> (partition aws, aws-cn or aws-us-gov)"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class SageMakerSettings:
    """Where and how confidently runs on SageMaker (see each field's ``metadata["help"]``)."""

    region: str | None = field(default=None, metadata=_help("AWS region; default: boto3's (AWS_REGION, ~/.aws/config)."))
    role_arn: str | None = field(default=None, metadata=_help("IAM role SageMaker assumes for jobs and endpoints."))
    bucket: str | None = field(default=None, metadata=_help("S3 bucket for data, code, adapters and deployment records."))
    prefix: str = field(default="confidently", metadata=_help("Key prefix inside the bucket."))
    # -- training ------------------------------------------------------------------------------
    training_image: str | None = field(default=None, metadata=_help(
        "PyTorch training container image URI (an AWS Deep Learning Container for your region)."))
    training_instance_type: str = field(default="ml.g5.xlarge", metadata=_help("Training instance type."))
    training_volume_gb: int = field(default=50, metadata=_help("Training instance disk, GB."))
    max_runtime_s: int = field(default=24 * 3600, metadata=_help("Training job time limit, seconds."))
    hf_token_secret: str | None = field(default=None, metadata=_help(
        "Secrets Manager secret (ARN or name) holding a Hugging Face token, read inside the job; "
        "the token never appears in the job's configuration."))
    # -- inference -----------------------------------------------------------------------------
    inference_image: str | None = field(default=None, metadata=_help(
        "LMI (djl-inference, vLLM) container image URI for your region."))
    inference_instance_type: str = field(default="ml.g5.xlarge", metadata=_help("Endpoint instance type."))
    min_instances: int = field(default=1, metadata=_help("Managed instance scaling: fewest instances."))
    max_instances: int = field(default=1, metadata=_help("Managed instance scaling: most instances."))
    base_model_id: str | None = field(default=None, metadata=_help(
        "HF_MODEL_ID served by the base component (hub id or s3:// prefix); default: the adapters' "
        "base model's hub id."))
    accelerators: float = field(default=1, metadata=_help("GPUs reserved for the base model component."))
    memory_mb: int = field(default=8192, metadata=_help("Memory reserved for the base model component, MB."))
    copy_count: int = field(default=1, metadata=_help("Copies of the base model component."))
    max_loras: int = field(default=4, metadata=_help("Adapters served in one batch (OPTION_MAX_LORAS)."))
    max_cpu_loras: int = field(default=8, metadata=_help("Adapters kept in CPU memory (OPTION_MAX_CPU_LORAS)."))
    max_lora_rank: int = field(default=16, metadata=_help("Largest adapter rank accepted (OPTION_MAX_LORA_RANK)."))
    max_logprobs: int = field(default=20, metadata=_help("Top logprobs a request may ask for (OPTION_MAX_LOGPROBS)."))
    tensor_parallel_degree: str = field(default="max", metadata=_help("OPTION_TENSOR_PARALLEL_DEGREE."))
    startup_timeout_s: int = field(default=900, metadata=_help("Container start-up health-check limit, seconds."))
    download_timeout_s: int = field(default=900, metadata=_help("Model download limit, seconds."))
    # -- waiting -------------------------------------------------------------------------------
    poll_interval_s: float = field(default=15.0, metadata=_help("Seconds between status checks."))
    wait_timeout_s: float = field(default=3600.0, metadata=_help("Give up waiting for a status after this long."))

    def __post_init__(self) -> None:
        if self.role_arn:
            check_role_arn(self.role_arn, "role_arn")

    def require(self, *names: str) -> None:
        """Raise :class:`ConfigError` naming every listed setting that is not set."""
        missing = [name for name in names if getattr(self, name) in (None, "")]
        if missing:
            hints = ", ".join(f"{FLAGS.get(n, '--' + n.replace('_', '-'))} / {ENV_PREFIX}{n.upper()}" for n in missing)
            raise ConfigError(f"missing SageMaker settings: {hints} (or set them in a --config file)")

    def s3_uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}"

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p)


def role_arn_problem(value: str) -> str | None:
    """Why ``value`` is not an IAM role ARN SageMaker can assume, or None when it looks like one."""
    if len(value) <= 2048 and _ROLE_ARN.fullmatch(value):
        return None
    return f"{value!r} is not an IAM role ARN; expected {ROLE_ARN_FORM}"


def check_role_arn(value: str, where: str) -> str:
    """``value`` if it looks like an IAM role ARN, else a :class:`ConfigError` naming ``where`` it came from
    (checked when settings are read, so a typo fails before anything is uploaded)."""
    if problem := role_arn_problem(value):
        raise ConfigError(f"{where}: {problem}")
    return value


def check_name(kind: str, name: str) -> str:
    """``name`` if SageMaker accepts it as a resource name, else a :class:`ConfigError` saying why."""
    if len(name) > 63 or not _NAME.match(name):
        raise ConfigError(f"{kind} name {name!r} is not valid on SageMaker: use at most 63 letters, digits "
                          "and hyphens, starting and ending with a letter or digit")
    return name


def _coerce(name: str, value: Any, kind: type, where: str) -> Any:
    if value is None:
        return None
    try:
        if kind is int and not isinstance(value, bool):
            return int(value)
        if kind is float and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    except ValueError:
        pass
    raise ConfigError(f"{where}: {name} must be {kind.__name__}, got {value!r}")


def _types() -> dict[str, type]:
    kinds = {"int": int, "float": float, "str": str, "str | None": str}
    return {f.name: kinds[str(f.type)] for f in fields(SageMakerSettings)}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the SageMaker config {path}: {error.strerror or error}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ConfigError(f"{path}: TOML settings need Python 3.11 or later; use a .json file") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
    # A shared pyproject-style file may keep the settings under [sagemaker].
    data = data.get("sagemaker", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings")
    return data


def load_settings(config: str | Path | None = None, environ: Mapping[str, str] | None = None,
                  **flags: Any) -> SageMakerSettings:
    """Settings from defaults, then the config file, then the environment, then non-None ``flags``.

    Raises
    ------
    ConfigError
        For an unreadable file, an unknown setting name, or a value of the wrong type.
    """
    environ = os.environ if environ is None else environ
    types = _types()
    values: dict[str, Any] = {}
    path = config or environ.get(CONFIG_ENV)
    if path:
        for name, value in _read_file(Path(path)).items():
            if name not in types:
                raise ConfigError(f"{path}: unknown SageMaker setting {name!r}; known: {', '.join(types)}")
            values[name] = _coerce(name, value, types[name], str(path))
            _check(name, values[name], f"{path}: {name}")
    for name, kind in types.items():
        if environ.get(ENV_PREFIX + name.upper()):
            values[name] = _coerce(name, environ[ENV_PREFIX + name.upper()], kind, ENV_PREFIX + name.upper())
            _check(name, values[name], ENV_PREFIX + name.upper())
    for name, value in flags.items():
        if name not in types:
            raise ConfigError(f"unknown SageMaker setting {name!r}")
        if value is not None:
            flag = FLAGS.get(name, f"--{name.replace('_', '-')}")
            values[name] = _coerce(name, value, types[name], flag)
            _check(name, values[name], flag)
    return replace(SageMakerSettings(), **values)


def _check(name: str, value: Any, where: str) -> None:
    """Refuse a value of the right type that cannot be right (a role that is not an IAM role ARN), naming ``where``
    it was given: the file and setting, the environment variable, or the flag."""
    if name == "role_arn" and value:
        check_role_arn(value, where)
