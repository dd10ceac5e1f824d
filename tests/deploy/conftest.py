"""Offline AWS: real boto3 clients wrapped in botocore Stubbers, and settings pointing at test resources."""

from __future__ import annotations

import json

import pytest
from sagemaker_fixtures import BUCKET, LMI_IMAGE, ROLE, TRAINING_IMAGE


@pytest.fixture
def settings():
    from confidently.deploy.settings import SageMakerSettings

    return SageMakerSettings(region="us-east-1", role_arn=ROLE, bucket=BUCKET, training_image=TRAINING_IMAGE,
                             inference_image=LMI_IMAGE, poll_interval_s=0.0, wait_timeout_s=5.0)


@pytest.fixture
def aws(monkeypatch):
    """service name → (client, Stubber); every queued response must be used by the end of the test."""
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)  # a CI profile that does not exist here would break the session
    session = boto3.session.Session(region_name="us-east-1")
    stubs = {}
    for name in ("sagemaker", "sagemaker-runtime", "s3"):
        client = session.client(name)
        stubs[name] = (client, Stubber(client))
        stubs[name][1].activate()
    yield stubs
    for _, stubber in stubs.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


@pytest.fixture
def runner(aws, settings):
    from confidently.deploy.calls import Runner

    return Runner({name: client for name, (client, _) in aws.items()}, settings)


@pytest.fixture
def sent(aws):
    """The bodies sent with invoke_endpoint (Stubber checks the other parameters exactly)."""
    bodies = []
    aws["sagemaker-runtime"][0].meta.events.register(
        "provide-client-params.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: bodies.append(json.loads(params["Body"])))
    return bodies
