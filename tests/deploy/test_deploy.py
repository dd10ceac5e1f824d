"""`sagemaker deploy` and `sagemaker delete`: every request's parameters, order, waiting, errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import replace

import pytest
from botocore.stub import ANY
from sagemaker_fixtures import BUCKET, HUB_ID, LMI_IMAGE, ROLE, description, make_adapter

from confidently.deploy.packaging import read_adapter
from confidently.deploy.sagemaker import delete_plan, deploy_plan
from confidently.errors import ArtifactError, BackendError, ConfigError

CLI = [sys.executable, "-m", "confidently.cli.__main__"]
PREFIX = "confidently/endpoints/reviews"
ENVIRONMENT = {
    "HF_MODEL_ID": HUB_ID, "OPTION_ENABLE_LORA": "true", "OPTION_MAX_LORAS": "4", "OPTION_MAX_CPU_LORAS": "8",
    "OPTION_MAX_LORA_RANK": "16", "OPTION_MAX_LOGPROBS": "20", "OPTION_TENSOR_PARALLEL_DEGREE": "max",
    "OPTION_ASYNC_MODE": "true", "OPTION_ROLLING_BATCH": "disable",
    "OPTION_ENTRYPOINT": "djl_python.lmi_vllm.vllm_async_service",
}


@pytest.fixture
def adapters(tmp_path):
    return [read_adapter(make_adapter(tmp_path / "triage")), read_adapter(make_adapter(tmp_path / "tone", threshold=None))]


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:111122223333:{kind}/{name}"


def test_deploy_requests_in_order_with_waits(aws, runner, settings, adapters):
    s3, sm = aws["s3"][1], aws["sagemaker"][1]
    # Every bundle has a policy (tone's reviews everything: no threshold was certified).
    for adapter, files in (("triage", ("manifest.json", "calibrator.json", "policy.json")),
                           ("tone", ("manifest.json", "calibrator.json", "policy.json"))):
        s3.add_response("put_object", {}, {"Bucket": BUCKET, "Key": f"{PREFIX}/adapters/{adapter}/adapter.tar.gz",
                                           "Body": ANY})
        for name in files:
            s3.add_response("put_object", {}, {"Bucket": BUCKET, "Key": f"{PREFIX}/adapters/{adapter}/{name}",
                                               "Body": (adapters[0].folder.parent / adapter / name).read_bytes()})
    sm.add_response("create_model", {"ModelArn": arn("model", "reviews-base")}, {
        "ModelName": "reviews-base", "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": LMI_IMAGE, "Environment": ENVIRONMENT}})
    sm.add_response("create_endpoint_config", {"EndpointConfigArn": arn("endpoint-config", "reviews-config")}, {
        "EndpointConfigName": "reviews-config", "ExecutionRoleArn": ROLE,
        "ProductionVariants": [{
            "VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1,
            "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 1},
            "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}]})
    sm.add_response("create_endpoint", {"EndpointArn": arn("endpoint", "reviews")},
                    {"EndpointName": "reviews", "EndpointConfigName": "reviews-config"})
    sm.add_response("describe_endpoint", description("endpoint", "reviews", "Creating"), {"EndpointName": "reviews"})
    sm.add_response("describe_endpoint", description("endpoint", "reviews", "InService"), {"EndpointName": "reviews"})
    sm.add_response("create_inference_component", {"InferenceComponentArn": arn("inference-component", "reviews-base")}, {
        "InferenceComponentName": "reviews-base", "EndpointName": "reviews", "VariantName": "AllTraffic",
        "Specification": {"ModelName": "reviews-base",
                          "StartupParameters": {"ModelDataDownloadTimeoutInSeconds": 900,
                                                "ContainerStartupHealthCheckTimeoutInSeconds": 900},
                          "ComputeResourceRequirements": {"NumberOfAcceleratorDevicesRequired": 1,
                                                          "MinMemoryRequiredInMb": 8192}},
        "RuntimeConfig": {"CopyCount": 1}})
    sm.add_response("describe_inference_component", description("ic", "reviews-base", "InService"),
                    {"InferenceComponentName": "reviews-base"})
    for adapter in ("triage", "tone"):
        sm.add_response("create_inference_component", {"InferenceComponentArn": arn("inference-component", adapter)}, {
            "InferenceComponentName": f"reviews-{adapter}", "EndpointName": "reviews",
            "Specification": {"BaseInferenceComponentName": "reviews-base",
                              "Container": {"ArtifactUrl": f"s3://{BUCKET}/{PREFIX}/adapters/{adapter}/adapter.tar.gz"}}})
        sm.add_response("describe_inference_component", description("ic", f"reviews-{adapter}", "InService"),
                        {"InferenceComponentName": f"reviews-{adapter}"})
    s3.add_response("put_object", {}, {"Bucket": BUCKET, "Key": f"{PREFIX}/deployment.json", "Body": ANY})
    calls = deploy_plan(settings, "reviews", adapters)
    runner.run(calls)
    record = json.loads(calls[-1].params["Body"])
    assert record["adapters"]["triage"] == {
        "component": "reviews-triage", "artifact": f"s3://{BUCKET}/{PREFIX}/adapters/triage/adapter.tar.gz",
        "files": {name: f"{PREFIX}/adapters/triage/{name}" for name in ("calibrator.json", "manifest.json", "policy.json")}}
    assert record["base_model"] == "qwen2.5-coder-0.5b-instruct" and record["base_component"] == "reviews-base"


def test_adapter_tarball_has_the_peft_files_at_its_root(settings, adapters):
    tarball = deploy_plan(settings, "reviews", adapters)[0].params["Body"]
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_failed_component_reports_the_reason(aws, runner, settings):
    aws["sagemaker"][1].add_response(
        "describe_inference_component",
        description("ic", "reviews-triage", "Failed", FailureReason="adapter rank 64 exceeds max_lora_rank"),
        {"InferenceComponentName": "reviews-triage"})
    with pytest.raises(BackendError, match="reviews-triage is Failed: adapter rank 64 exceeds max_lora_rank"):
        runner.wait("component_in_service", "reviews-triage")


def test_aws_errors_are_one_clear_line(aws, runner):
    aws["sagemaker"][1].add_client_error("create_endpoint", service_error_code="ResourceLimitExceeded",
                                         service_message="account-level service limit", http_status_code=400)
    with pytest.raises(BackendError, match="AWS refused create_endpoint\\(reviews\\): ResourceLimitExceeded"):
        runner.call("sagemaker", "create_endpoint", EndpointName="reviews", EndpointConfigName="reviews-config")


def test_adapter_checks(tmp_path, settings):
    with pytest.raises(ArtifactError, match="has no manifest.json: not a calibration bundle"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "adapter_config.json").write_text("{}")
        read_adapter(tmp_path / "empty")
    mixed = [read_adapter(make_adapter(tmp_path / "a")), read_adapter(make_adapter(tmp_path / "b", base_model="gemma-3-270m"))]
    with pytest.raises(ArtifactError, match="must share a base model"):
        deploy_plan(settings, "reviews", mixed)
    with pytest.raises(ConfigError, match="rank 64, above max_lora_rank 16"):
        deploy_plan(settings, "reviews", [read_adapter(make_adapter(tmp_path / "big", rank=64))])
    with pytest.raises(ConfigError, match="'reviews-under_score' is not valid"):
        deploy_plan(settings, "reviews", [read_adapter(make_adapter(tmp_path / "under_score"))])
    with pytest.raises(ConfigError, match="--image / CONFIDENTLY_SAGEMAKER_INFERENCE_IMAGE"):
        deploy_plan(replace(settings, inference_image=None), "reviews", [read_adapter(tmp_path / "a")])


def test_cli_deploy_dry_run(tmp_path):
    folder = make_adapter(tmp_path / "triage")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CONFIDENTLY_SAGEMAKER_REGION": "us-east-1",
           **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}  # the code under test
    result = subprocess.run([*CLI, "sagemaker", "deploy", "reviews", str(folder), "--role", ROLE, "--bucket", BUCKET,
                             "--image", LMI_IMAGE, "--max-loras", "2", "--dry-run"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout)
    assert [c["operation"] for c in calls] == ["put_object"] * 4 + [
        "create_model", "create_endpoint_config", "create_endpoint", "create_inference_component",
        "create_inference_component", "put_object"]
    assert calls[4]["params"]["PrimaryContainer"]["Environment"]["OPTION_MAX_LORAS"] == "2"
    assert [c.get("then_wait_for") for c in calls[6:9]] == ["endpoint_in_service", "component_in_service",
                                                           "component_in_service"]


# -- delete ---------------------------------------------------------------------------------------------
def not_found(stub, operation: str, key: str, name: str) -> None:
    stub.add_client_error(operation, service_error_code="ValidationException",
                          service_message=f"Could not find {name}.", http_status_code=400, expected_params={key: name})


def test_delete_removes_adapters_then_base_then_endpoint_config_model(aws, runner, settings):
    sm, s3 = aws["sagemaker"][1], aws["s3"][1]
    summary = {"CreationTime": description("ic", "x", None)["CreationTime"], "EndpointName": "reviews",
               "EndpointArn": arn("endpoint", "reviews"), "VariantName": "AllTraffic",
               "LastModifiedTime": description("ic", "x", None)["LastModifiedTime"]}
    sm.add_response("describe_endpoint", description("endpoint", "reviews", "InService", EndpointConfigName="reviews-config"),
                    {"EndpointName": "reviews"})
    sm.add_response("list_inference_components", {"InferenceComponents": [
        {**summary, "InferenceComponentName": "reviews-base", "InferenceComponentArn": arn("ic", "reviews-base")}],
        "NextToken": "page2"}, {"EndpointNameEquals": "reviews"})
    sm.add_response("list_inference_components", {"InferenceComponents": [
        {**summary, "InferenceComponentName": "reviews-triage", "InferenceComponentArn": arn("ic", "reviews-triage")}]},
        {"EndpointNameEquals": "reviews", "NextToken": "page2"})
    sm.add_response("describe_inference_component", description(
        "ic", "reviews-base", "InService", Specification={"ModelName": "reviews-base"}),
        {"InferenceComponentName": "reviews-base"})
    sm.add_response("describe_inference_component", description(
        "ic", "reviews-triage", "InService", Specification={"BaseInferenceComponentName": "reviews-base"}),
        {"InferenceComponentName": "reviews-triage"})
    plan = delete_plan(runner, settings, "reviews")
    for component in ("reviews-triage", "reviews-base"):
        sm.add_response("delete_inference_component", {}, {"InferenceComponentName": component})
        sm.add_response("describe_inference_component", description("ic", component, "Deleting"),
                        {"InferenceComponentName": component})
        not_found(sm, "describe_inference_component", "InferenceComponentName", component)
    sm.add_response("delete_endpoint", {}, {"EndpointName": "reviews"})
    not_found(sm, "describe_endpoint", "EndpointName", "reviews")
    sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "reviews-config"})
    sm.add_response("delete_model", {}, {"ModelName": "reviews-base"})
    s3.add_response("delete_object", {}, {"Bucket": BUCKET, "Key": f"{PREFIX}/deployment.json"})
    runner.run(plan)


def test_delete_of_a_missing_endpoint(aws, runner, settings):
    not_found(aws["sagemaker"][1], "describe_endpoint", "EndpointName", "ghost")
    with pytest.raises(BackendError, match="no endpoint named 'ghost'"):
        delete_plan(runner, settings, "ghost")


def test_cli_delete_dry_run_reads_but_deletes_nothing(aws, runner, settings, monkeypatch):
    from typer.testing import CliRunner

    from confidently.cli import app
    from confidently.deploy import sagemaker

    monkeypatch.setattr(sagemaker, "make_clients", lambda _: runner.clients)
    sm = aws["sagemaker"][1]
    sm.add_response("describe_endpoint", description("endpoint", "reviews", "InService", EndpointConfigName="reviews-config"),
                    {"EndpointName": "reviews"})
    sm.add_response("list_inference_components", {"InferenceComponents": []}, {"EndpointNameEquals": "reviews"})
    result = CliRunner().invoke(app, ["sagemaker", "delete", "reviews", "--bucket", BUCKET, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert [c["operation"] for c in json.loads(result.stdout)] == ["delete_endpoint", "delete_endpoint_config",
                                                                  "delete_object"]
