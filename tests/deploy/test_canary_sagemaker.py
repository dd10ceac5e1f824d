"""`confidently canary --sagemaker`: the deployed adapter's golden prompts re-scored on its endpoint, through
the same invoke_endpoint requests `sagemaker classify` sends (botocore Stubber, no AWS)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sagemaker_fixtures import BUCKET, make_adapter, streaming
from test_classify import PREFIX, completion, expect_invoke
from typer.testing import CliRunner

from confidently.monitoring.canary import CANARY_FILE, Canary, CanaryFailedError
from confidently.cli import app
from confidently.tasks.task import SENTIMENT

TEXTS = ("great phone", "broke in a day", "works as described")
#: What the endpoint answered when the canary was recorded: P(Yes) 0.9, P(No) 0.05 for every text.
RECORDED = np.tile([0.05 / 0.95, 0.9 / 0.95], (len(TEXTS), 1))


@pytest.fixture
def folder(tmp_path, tiny_model_dir):
    canary = Canary(SENTIMENT, None, TEXTS, ("positive", "negative", "positive"), RECORDED, tolerance=0.02)
    return make_adapter(tmp_path / "adapters" / "triage", base_model=str(tiny_model_dir),
                        extra_json={CANARY_FILE: canary.to_dict()})


@pytest.fixture
def cli(aws, runner, monkeypatch):
    from confidently.deploy import sagemaker

    monkeypatch.setattr(sagemaker, "make_clients", lambda _: runner.clients)
    monkeypatch.setenv("CONFIDENTLY_SAGEMAKER_BUCKET", BUCKET)
    return lambda *args: CliRunner().invoke(app, ["canary", *args, "--json"])


def test_the_endpoint_that_scores_as_recorded_passes(aws, cli, folder, sent):
    for _ in TEXTS:
        expect_invoke(aws, "reviews-triage", completion(0.9, 0.05))
    result = cli(str(folder), "--sagemaker", "reviews")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] and report["n"] == 3 and report["max_deviation"] < 1e-9
    assert report["scored_on"] == "SageMaker endpoint reviews adapter triage"
    assert len(sent) == 3 and all(body["max_tokens"] == 1 and "model" not in body for body in sent)


def test_an_endpoint_whose_adapter_is_not_in_effect_fails(aws, cli, folder):
    """The deployed bundle (read from S3 through the deployment record, every hash checked) against an
    endpoint that answers like another model: exit 1 with the deviation."""
    names = ("manifest.json", "calibrator.json", "policy.json", CANARY_FILE)
    record = {"format": "confidently.sagemaker-deployment", "version": 1, "adapters": {"triage": {
        "component": "reviews-triage", "artifact": "s3://x/adapter.tar.gz",
        "files": {name: f"{PREFIX}/adapters/triage/{name}" for name in names}}}}
    s3 = aws["s3"][1]
    s3.add_response("get_object", {"Body": streaming(json.dumps(record))},
                    {"Bucket": BUCKET, "Key": f"{PREFIX}/deployment.json"})
    for name in names:
        s3.add_response("get_object", {"Body": streaming((folder / name).read_bytes())},
                        {"Bucket": BUCKET, "Key": f"{PREFIX}/adapters/triage/{name}"})
    for _ in TEXTS:
        expect_invoke(aws, "reviews-triage", completion(0.5, 0.4))
    result = cli("--sagemaker", "reviews", "--adapter", "triage")
    assert isinstance(result.exception, CanaryFailedError), result.output
    report = json.loads(result.stdout)
    expected = abs(0.5 / 0.9 - 0.9 / 0.95)
    assert not report["passed"] and report["max_deviation"] == pytest.approx(expected, abs=1e-6)
    assert "canary failed on SageMaker endpoint reviews adapter triage" in str(result.exception)


def test_usage_errors_are_one_line(cli, folder):
    assert "needs --adapter NAME" in str(cli("--sagemaker", "reviews").exception)
    wrong = cli(str(folder), "--sagemaker", "reviews", "--adapter", "other")
    assert "serves the adapter in" in str(wrong.exception)
    both = cli(str(folder), "--sagemaker", "reviews", "--server", "http://127.0.0.1:1")
    assert "at most one of --base-url, --server and --sagemaker" in str(both.exception)
