"""`sagemaker classify`: invoke_endpoint requests, logprobs → raw probabilities → the adapter's calibrator
and policy, artifacts from S3 (deployment record) or a local adapters folder."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from botocore.stub import ANY
from sagemaker_fixtures import BUCKET, make_adapter, streaming

from confidently.calibration import load_calibrator
from confidently.deploy.remote import classify_remote
from confidently.errors import BackendError, ConfigError

PREFIX = "confidently/endpoints/reviews"


def completion(yes: float, no: float) -> str:
    """vLLM's completion JSON for one generated token, as the LMI container returns it."""
    top = {"Yes": math.log(yes), "No": math.log(no), " maybe": math.log(0.01)}
    return json.dumps({"id": "cmpl", "object": "text_completion", "model": "base", "choices": [{
        "index": 0, "text": "Yes", "finish_reason": "length",
        "logprobs": {"tokens": ["Yes"], "token_logprobs": [top["Yes"]], "top_logprobs": [top], "text_offset": [0]}}]})


def chat_completion(yes: float, no: float) -> str:
    entries = [{"token": "yes", "logprob": math.log(yes)}, {"token": "no", "logprob": math.log(no)}]
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "yes"},
                                    "logprobs": {"content": [{**entries[0], "top_logprobs": entries}]}}]})


def expect_invoke(aws, component: str, reply: str) -> None:
    aws["sagemaker-runtime"][1].add_response(
        "invoke_endpoint", {"Body": streaming(reply), "ContentType": "application/json"},
        {"EndpointName": "reviews", "InferenceComponentName": component, "ContentType": "application/json",
         "Accept": "application/json", "Body": ANY})


def test_classify_with_artifacts_from_s3(aws, runner, settings, sent, tmp_path, tiny_model_dir):
    folder = make_adapter(tmp_path / "triage", base_model=str(tiny_model_dir), threshold=0.7)
    record = {"format": "confidently.sagemaker-deployment", "version": 1, "adapters": {"triage": {
        "component": "reviews-triage", "artifact": "s3://x/adapter.tar.gz",
        "files": {name: f"{PREFIX}/adapters/triage/{name}" for name in ("manifest.json", "calibrator.json", "policy.json")}}}}
    s3 = aws["s3"][1]
    s3.add_response("get_object", {"Body": streaming(json.dumps(record))},
                    {"Bucket": BUCKET, "Key": f"{PREFIX}/deployment.json"})
    for name in ("manifest.json", "calibrator.json", "policy.json"):
        s3.add_response("get_object", {"Body": streaming((folder / name).read_bytes())},
                        {"Bucket": BUCKET, "Key": f"{PREFIX}/adapters/triage/{name}"})
    expect_invoke(aws, "reviews-triage", completion(0.9, 0.05))
    expect_invoke(aws, "reviews-triage", completion(0.2, 0.7))
    results = classify_remote(runner, settings, "reviews", "triage", ["great", "bad"], max_concurrency=1)
    # The prompt is the chat template rendered with the base model's tokenizer; no model name in the body.
    body = sent[0]
    assert body["prompt"].startswith("<|im_start|>user\n") and body["max_tokens"] == 1 and body["logprobs"] == 20
    assert "model" not in body and body["temperature"] == 0
    raw = np.array([[0.05, 0.9], [0.7, 0.2]])
    raw = raw / raw.sum(axis=1, keepdims=True)
    calibrated = load_calibrator(folder / "calibrator.json").predict_proba(raw)
    for i, result in enumerate(results):
        assert result.raw_probs["positive"] == pytest.approx(raw[i, 1]) and result.calibrated
        assert result.confidence == pytest.approx(calibrated[i].max())
        assert result.label == ("positive", "negative")[i]
        assert result.decision == ("automate" if calibrated[i].max() >= 0.7 else "review")
        assert result.uncovered_mass == pytest.approx((0.04, 0.09)[i])  # 1 - returned probability


def test_classify_with_a_local_adapters_folder_and_no_tokenizer(aws, runner, settings, sent, tmp_path):
    make_adapter(tmp_path / "adapters" / "tone", calibrated=False, threshold=None)
    expect_invoke(aws, "reviews-tone", chat_completion(0.3, 0.6))
    [result] = classify_remote(runner, settings, "reviews", "tone", ["meh"], adapters_dir=tmp_path / "adapters",
                               tokenizer=None)
    assert sent[0]["messages"][-1]["content"].endswith('"meh"') and sent[0]["top_logprobs"] == 20
    # No calibrator, and a policy that certified no threshold: the raw answer, sent to review.
    assert result.label == "negative" and not result.calibrated and result.decision == "review"
    assert result.confidence == pytest.approx(0.6 / 0.9) == result.raw_confidence


def test_unknown_adapter_lists_the_served_ones(aws, runner, settings):
    record = {"format": "confidently.sagemaker-deployment", "version": 1,
              "adapters": {"triage": {}, "tone": {}}}
    aws["s3"][1].add_response("get_object", {"Body": streaming(json.dumps(record))},
                              {"Bucket": BUCKET, "Key": f"{PREFIX}/deployment.json"})
    with pytest.raises(ConfigError, match="serves no adapter 'nope'; it serves: tone, triage"):
        classify_remote(runner, settings, "reviews", "nope", ["x"])


def test_endpoint_errors_are_clear(aws, runner, settings, tmp_path):
    make_adapter(tmp_path / "tone", calibrated=False, threshold=None)
    aws["sagemaker-runtime"][1].add_client_error(
        "invoke_endpoint", service_error_code="ModelError", http_status_code=424,
        service_message="Received client error (400) from primary: max_logprobs is 20")
    with pytest.raises(BackendError, match="AWS refused invoke_endpoint\\(reviews, component reviews-tone\\): "
                                           "ModelError: .*max_logprobs"):
        classify_remote(runner, settings, "reviews", "tone", ["x"], adapters_dir=tmp_path, tokenizer=None)


def test_an_adapter_deciding_by_sets_per_slice_is_refused_before_any_request(aws, runner, settings, tmp_path):
    from test_prediction_sets import fitted_sets

    from confidently.bundle.bundle import CONFORMAL_FILE
    from confidently.errors import ArtifactError

    sets = fitted_sets(condition_on="group", group_column="domain")
    make_adapter(tmp_path / "adapters" / "tone", calibrated=False, extra_json={CONFORMAL_FILE: sets.to_dict()},
                 metadata={"decision_rule": "prediction_set"})
    with pytest.raises(ArtifactError, match="fitted per domain, but a text sent to the endpoint carries no domain"):
        classify_remote(runner, settings, "reviews", "tone", ["x"], adapters_dir=tmp_path / "adapters", tokenizer=None)
