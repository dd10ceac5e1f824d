"""AWS calls as data: a deployment is a list of :class:`Call` that is either printed (``--dry-run``)
or run in order, waiting where a resource must reach a state before the next call."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confidently.deploy.settings import SageMakerSettings
from confidently.errors import BackendError

# What to wait for after a call, and how: describe operation, its name parameter, the status field,
# the statuses that mean done, and those that mean failed. "Gone" waits end when describe says the
# resource no longer exists.
WAITS: dict[str, tuple[str, str, str, frozenset, frozenset]] = {
    "endpoint_in_service": ("describe_endpoint", "EndpointName", "EndpointStatus",
                            frozenset({"InService"}), frozenset({"Failed", "OutOfService"})),
    "component_in_service": ("describe_inference_component", "InferenceComponentName", "InferenceComponentStatus",
                             frozenset({"InService"}), frozenset({"Failed"})),
    "component_gone": ("describe_inference_component", "InferenceComponentName", "InferenceComponentStatus",
                       frozenset({None}), frozenset({"Failed"})),
    "endpoint_gone": ("describe_endpoint", "EndpointName", "EndpointStatus", frozenset({None}), frozenset({"Failed"})),
    "training_done": ("describe_training_job", "TrainingJobName", "TrainingJobStatus",
                      frozenset({"Completed"}), frozenset({"Failed", "Stopped"})),
}


@dataclass(frozen=True)
class Call:
    """One boto3 client call.

    Attributes
    ----------
    service : the client (``sagemaker``, ``s3``).
    operation : the client method (``create_endpoint``).
    params : its keyword arguments, exactly as sent.
    wait : a key of :data:`WAITS` to wait for afterwards, on the resource named in ``params``.
    """

    service: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    wait: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; upload bodies appear as their size and sha256."""
        params = {key: _printable(value) for key, value in self.params.items()}
        data: dict[str, Any] = {"service": self.service, "operation": self.operation, "params": params}
        if self.wait:
            data["then_wait_for"] = self.wait
        return data


def _printable(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()}>"
    return value


def render(calls: Sequence[Call]) -> str:
    """The calls as a JSON list (what ``--dry-run`` prints)."""
    return json.dumps([call.to_dict() for call in calls], indent=2, default=str)


def is_not_found(error: Exception) -> bool:
    """Whether a botocore ClientError says the resource does not exist (how SageMaker reports deletion)."""
    response = getattr(error, "response", None) or {}
    err = response.get("Error", {})
    return err.get("Code") in ("ValidationException", "ResourceNotFound") and "not find" in err.get("Message", "")


def aws_error(error: Exception, doing: str) -> BackendError:
    """A botocore error as one clear line."""
    err = (getattr(error, "response", None) or {}).get("Error", {})
    if err:
        return BackendError(f"AWS refused {doing}: {err.get('Code')}: {err.get('Message')}")
    return BackendError(f"AWS call {doing} failed: {error}")


class Runner:
    """Runs calls in order on the given clients, waiting where asked; errors become :class:`BackendError`.

    Parameters
    ----------
    clients : service name → boto3 client.
    settings : poll interval and wait timeout.
    echo : told about each step (the CLI prints it).
    """

    def __init__(self, clients: dict[str, Any], settings: SageMakerSettings,
                 echo: Callable[[str], None] = lambda message: None):
        self.clients = clients
        self.settings = settings
        self.echo = echo

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.clients[service], operation)(**params)
        except (ClientError, BotoCoreError) as error:
            raise aws_error(error, f"{operation}({_name_of(params)})") from None

    def run(self, calls: Sequence[Call]) -> list[dict[str, Any]]:
        results = []
        for call in calls:
            self.echo(f"{call.operation} {_name_of(call.params)}")
            results.append(self.call(call.service, call.operation, **call.params))
            if call.wait:
                self.wait(call.wait, call.params[WAITS[call.wait][1]])
        return results

    def describe(self, operation: str, key: str, name: str) -> dict[str, Any] | None:
        """The resource's description, or None once it no longer exists."""
        from botocore.exceptions import ClientError

        try:
            return getattr(self.clients["sagemaker"], operation)(**{key: name})
        except ClientError as error:
            if is_not_found(error):
                return None
            raise aws_error(error, f"{operation}({name})") from None

    def wait(self, what: str, name: str) -> None:
        """Poll until ``name`` reaches the state ``what`` names (see :data:`WAITS`)."""
        operation, key, status_key, done, failed = WAITS[what]
        deadline = time.monotonic() + self.settings.wait_timeout_s
        while True:
            description = self.describe(operation, key, name)
            status = None if description is None else description.get(status_key)
            if status in done:
                return
            if status in failed:
                reason = (description or {}).get("FailureReason", "no reason given")
                raise BackendError(f"{name} is {status}: {reason}")
            if time.monotonic() > deadline:
                raise BackendError(f"{name} is still {status} after {self.settings.wait_timeout_s:g} s "
                                   f"(waiting for {what}); raise wait_timeout_s or check the SageMaker console")
            self.echo(f"  {name}: {status}…")
            time.sleep(self.settings.poll_interval_s)


def _name_of(params: dict[str, Any]) -> str:
    for key in ("InferenceComponentName", "EndpointName", "EndpointConfigName", "ModelName", "TrainingJobName"):
        if key in params:
            return str(params[key])
    if "Key" in params:
        return f"s3://{params.get('Bucket')}/{params['Key']}"
    return ""
