"""``confidently serve --backend openai`` in front of a real engine: llama-cpp-python's server on the
default model's GGUF, with a calibration bundle fitted through that engine (``evaluate --backend openai``)."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import numpy as np
import pytest
from fake_server import free_port

from confidently.decision.calibrated import CalibratedClassifier
from confidently.scoring.classifier import Classifier
from confidently.data import generate_sentiment
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate

from .conftest import wait_until

TOKENIZER = "qwen2.5-coder-0.5b-instruct"
TEXTS = ["I love this movie, it is wonderful!", "I hate this movie, it is awful.", "The package arrived on Tuesday.",
         "Not bad at all, I would go back."]


@pytest.mark.model
def test_serve_through_llama_cpp_calibrates_decides_and_gives_prediction_sets(llama_server, tmp_path):
    engine = Classifier(model=llama_server.model, backend="openai", base_url=llama_server.url, tokenizer=TOKENIZER,
                        batch_size=8)
    rows = generate_sentiment(60, seed=5)
    half = len(rows.texts) // 2
    calibration, test = rows.subset(range(half)), rows.subset(range(half, len(rows.texts)))
    folder = tmp_path / "run"
    run_evaluate(engine, calibration, test, folder, config=EvaluationConfig(methods=("platt",), budget_repeats=1,
                                                                            n_resamples=50), progress=False)
    port = free_port()
    log = tmp_path / "serve.log"
    # --canary mark: llama.cpp's prompt cache moves its numbers slightly between runs; the canary's deviation
    # is read from /metrics below instead of refusing the start. llama.cpp answers one request at a time, so
    # a request waits for those sent with it: few at once (--batch-size) and a generous --engine-timeout.
    command = [sys.executable, "-m", "confidently.cli", "serve", "--backend", "openai", "--base-url", llama_server.url,
               "--model", llama_server.model, "--tokenizer", TOKENIZER, "--calibration", str(folder),
               "--port", str(port), "--feedback-db", "none", "--canary", "mark", "--batch-size", "4",
               "--engine-timeout", "300"]
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _healthy(url, process, log), timeout=600, what="the server to start")
        info = httpx.get(url + "/v1/adapters", timeout=60).json()["base"]
        assert (info["engine_model"], info["weights_checked_by"]) == (llama_server.model, "engine")
        metrics = httpx.get(url + "/metrics", timeout=60).text
        deviation = re.search(r'^confidently_canary_max_deviation\{adapter="\(base\)"\} (\S+)$', metrics, re.M)
        assert deviation is not None and float(deviation.group(1)) < 0.05, metrics
        reply = httpx.post(url + "/v1/classify", json={"texts": TEXTS}, timeout=600)
        assert reply.status_code == 200, reply.text
        body = reply.json()
    finally:
        process.terminate()
        process.wait(60)
    calibrated = CalibratedClassifier(engine, bundle=folder)
    labels = list(calibrated.labels)
    raw = np.array([[r["raw_probs"][label] for label in labels] for r in body["results"]])
    # The reply is the bundle's calibrator, policy and prediction sets applied to the engine's scores...
    decided = calibrated.decide(raw)
    for i, result in enumerate(body["results"]):
        assert result["calibrated"] and result["decision"] in ("automate", "review")
        assert result["label"] == decided.predicted_labels[i]
        assert result["confidence"] == pytest.approx(decided.confidence[i], abs=1e-9)
        assert result["decision"] == decided.decision[i]
        assert result["prediction_set"] == decided.set_lists[i] and result["prediction_set"]
    # ...and those scores are the engine's own (llama.cpp's prompt cache moves them by a few 1e-3).
    direct = engine.score(TEXTS).probs
    print(f"\nserve --backend openai on llama.cpp: canary max deviation {float(deviation.group(1)):.4g}; served vs "
          f"direct raw probabilities max |diff| {np.abs(raw - direct).max():.4g} over {len(TEXTS)} texts")
    np.testing.assert_allclose(raw, direct, atol=0.05)
    assert body["results"][0]["raw_probs"]["positive"] > body["results"][1]["raw_probs"]["positive"] + 0.3


def _healthy(url: str, process: subprocess.Popen, log) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
    try:
        return httpx.get(url + "/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False
