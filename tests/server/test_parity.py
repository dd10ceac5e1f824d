"""Parity: one calibration bundle gives the same calibrated answer on every path.

The same texts go through the Python API, ``classify --json``, ``score``, the server and the
SageMaker remote path (its endpoint stubbed by a stand-in that runs the same model), with one adapter
bundle (calibrator + policy). Every path scores one text per forward pass (batch size 1), so the raw
scores are computed identically everywhere and any difference would come from the decision path
itself: calibrated probabilities must agree to 1e-9 and the decisions exactly.
"""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from confidently.backends.transformers_backend import TransformersBackend
from confidently.bundle.bundle import ADAPTER_CONFIG_FILE, WEIGHTS_FILE, read_bundle, write_bundle
from confidently.calibration import PlattCalibrator
from confidently.scoring.classifier import Classifier
from confidently.cli import app
from confidently.decision.calibrated import CalibratedClassifier
from confidently.decision.policy import DecisionPolicy

from .conftest import make_adapter

TEXTS = ["the movie was great", "I hate it", "awful and boring", "a wonderful film, I love it", "no", "maybe yes"]
NAME = "parity"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory, tiny_model_dir, weights_id):
    """An adapter bundle whose calibrated confidences on TEXTS differ and whose threshold splits them.

    The random adapter is nearly certain of every text (raw P(positive) 0.998-0.9996), so its Platt
    calibrator is fitted on synthetic rows over that range whose labels turn positive as P rises.
    """
    root = tmp_path_factory.mktemp("parity-adapters")
    folder = make_adapter(tiny_model_dir, root / NAME, seed=11, weights_id=weights_id, model_name=str(tiny_model_dir))
    bundle = read_bundle(folder)
    raw = CalibratedClassifier.load(folder, dtype="float32").classifier.score(TEXTS).probs[:, 1]
    rng = np.random.default_rng(0)
    p = rng.uniform(raw.min() - 1e-4, min(raw.max() + 1e-4, 1 - 1e-6), 400)
    y = (rng.uniform(size=400) < 0.1 + 0.8 * (p - p.min()) / (p.max() - p.min())).astype(int)
    calibrator = PlattCalibrator().fit(np.column_stack([1 - p, p]), y)
    confidence = np.sort(calibrator.predict_proba(np.column_stack([1 - raw, raw])).max(1))
    assert confidence[3] - confidence[2] > 1e-3
    kept = lambda path: None  # noqa: E731  (the PEFT files stay as they are)
    write_bundle(folder, model=bundle.model, task=bundle.task, chat=bundle.chat, calibrator=calibrator,
                 policy=DecisionPolicy(round(float(confidence[2] + confidence[3]) / 2, 6), 0.9, True, "parity test",
                                       0.95),
                 fitted_on=bundle.fitted_on, extra_files={WEIGHTS_FILE: kept, ADAPTER_CONFIG_FILE: kept})
    return folder


def as_arrays(results: list[dict]) -> tuple[np.ndarray, list[str], list[str]]:
    labels = list(results[0]["calibrated_probs"])
    return (np.array([[r["calibrated_probs"][label] for label in labels] for r in results]),
            [r["label"] for r in results], [r["decision"] for r in results])


class EndpointStandIn:
    """A SageMaker runtime client whose endpoint runs the tiny model with the adapter (vLLM's reply shape).

    It answers the label token ids the client asks for (``logprob_token_ids``), as vLLM does, from the
    same forward pass the local backend runs.
    """

    def __init__(self, folder, tiny_model_dir):
        self.backend = TransformersBackend(str(tiny_model_dir), dtype="float32")
        self.backend.load_adapter(folder, NAME)
        bundle = read_bundle(folder)
        self.prefix = Classifier(backend=self.backend, task=bundle.task, chat=bundle.chat).prefix
        self.components: list[str] = []

    def invoke_endpoint(self, *, EndpointName, InferenceComponentName, ContentType, Accept, Body):
        self.components.append(InferenceComponentName)
        body = json.loads(Body)
        row = self.backend.next_token_logprobs([body["prompt"]], shared_prefix=self.prefix)[0]
        top = {f"token_id:{i}": float(row[i]) for i in body["logprob_token_ids"]}
        reply = {"choices": [{"index": 0, "text": "", "logprobs": {"top_logprobs": [top]}}]}
        return {"Body": io.BytesIO(json.dumps(reply).encode())}


def test_every_path_gives_the_same_calibrated_answer(bundle_dir, tiny_model_dir, serve_backend, tmp_path):
    paths: dict[str, tuple[np.ndarray, list[str], list[str]]] = {}

    api = CalibratedClassifier.load(bundle_dir, dtype="float32", batch_size=1)
    paths["python api"] = as_arrays([p.to_dict() for p in api.classify_many(TEXTS)])

    runner = CliRunner()
    replies = []
    for text in TEXTS:
        result = runner.invoke(app, ["classify", text, "--adapter", str(bundle_dir), "--dtype", "float32",
                                     "--json", "-k", "0"])
        assert result.exit_code == 0, result.output
        replies.append(json.loads(result.stdout))
    paths["classify --json"] = as_arrays(replies)

    data, out = tmp_path / "texts.jsonl", tmp_path / "scores.parquet"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    result = runner.invoke(app, ["score", str(data), "--out", str(out), "--adapter", str(bundle_dir), "--dtype",
                                 "float32", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    labels = [c.removeprefix("calibrated_p_") for c in frame.columns if c.startswith("calibrated_p_")]
    paths["score"] = (frame[[f"calibrated_p_{label}" for label in labels]].to_numpy(),
                      list(frame["calibrated_prediction"]), list(frame["decision"]))

    backend = TransformersBackend(str(tiny_model_dir), dtype="float32")
    with serve_backend(backend, adapters_dir=bundle_dir.parent, batch_size=1) as live:
        reply = httpx.post(live.url + "/v1/classify", json={"texts": TEXTS, "adapter": NAME}, timeout=120).json()
    paths["server"] = as_arrays(reply["results"])

    from confidently.deploy.calls import Runner
    from confidently.deploy.remote import classify_remote
    from confidently.deploy.settings import SageMakerSettings

    endpoint = EndpointStandIn(bundle_dir, tiny_model_dir)
    settings = SageMakerSettings(region="us-east-1")
    remote = classify_remote(Runner({"sagemaker-runtime": endpoint}, settings), settings, "reviews", NAME, TEXTS,
                             adapters_dir=bundle_dir.parent, max_concurrency=1)
    assert set(endpoint.components) == {f"reviews-{NAME}"}
    paths["sagemaker classify"] = as_arrays([p.to_dict() for p in remote])

    reference, reference_labels, reference_decisions = paths["python api"]
    assert {"automate", "review"} == set(reference_decisions)  # the threshold splits the texts
    for name, (probs, labels, decisions) in paths.items():
        np.testing.assert_allclose(probs, reference, rtol=0, atol=1e-9, err_msg=name)
        assert labels == reference_labels, name
        assert decisions == reference_decisions, name


def test_serve_calibration_serves_a_calibrated_base_model(tiny_model_dir, serve_backend, tmp_path):
    from test_bundle import make_bundle

    backend = TransformersBackend(str(tiny_model_dir), dtype="float32")
    make_bundle(tmp_path / "run", Classifier(backend=backend))
    expected = CalibratedClassifier(Classifier(backend=backend, batch_size=1), bundle=tmp_path / "run")
    with serve_backend(backend, calibration=tmp_path / "run", batch_size=1) as live:
        reply = httpx.post(live.url + "/v1/classify", json={"texts": TEXTS}, timeout=120).json()
        base = httpx.get(live.url + "/v1/adapters").json()["base"]
    assert reply["decided_on"] == "calibrated" and reply["threshold"] == 0.7
    assert base["calibrator"] == "platt" and base["manifest_sha256"] == read_bundle(tmp_path / "run").manifest_sha256
    probs, labels, decisions = as_arrays(reply["results"])
    wanted = expected.classify_many(TEXTS)
    np.testing.assert_allclose(probs, [list(p.calibrated_probs.values()) for p in wanted], rtol=0, atol=1e-9)
    assert labels == [p.label for p in wanted] and decisions == [p.decision for p in wanted]


def test_serve_refuses_a_foreign_bundle_before_loading_the_model(tiny_model_dir, other_tiny_model_dir, tmp_path):
    from test_bundle import make_bundle

    make_bundle(tmp_path / "run", Classifier(model=str(tiny_model_dir), dtype="float32"))
    other = other_tiny_model_dir
    result = CliRunner().invoke(app, ["serve", "--calibration", str(tmp_path / "run"), "--model", str(other)])
    assert result.exit_code != 0 and "was fitted on" in str(result.exception)
    assert f"applied to {other} (weights" in str(result.exception)
