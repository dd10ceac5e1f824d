"""POST /v1/classify on a live server: base and adapters agree with offline scoring; batching; metrics."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from confidently.backends.transformers_backend import TransformersBackend
from confidently.calibration import load_calibrator
from confidently.scoring.classifier import Classifier
from confidently.tasks.task import SENTIMENT
from confidently.decision.policy import DecisionPolicy

from .conftest import TRIAGE

TEXTS = ["the movie was great", "I hate it", "awful and boring", "a wonderful film, I love it", "no"]


@pytest.fixture(scope="module")
def offline(tiny_model_dir, adapters_dir):
    """Offline probabilities per adapter (None = base), scored with a separate backend."""
    backend = TransformersBackend(str(tiny_model_dir), device="cpu", dtype="float32")
    out = {None: Classifier(backend=backend, task=SENTIMENT, batch_size=3).score(TEXTS).probs}
    for name, task in (("alpha", SENTIMENT), ("beta", TRIAGE)):
        backend.load_adapter(adapters_dir / name, name)
        out[name] = Classifier(backend=backend, task=task, batch_size=3).score(TEXTS).probs
    return out


def probs_of(reply: dict, key: str = "raw_probs") -> np.ndarray:
    return np.array([[r[key][label] for label in reply["labels"]] for r in reply["results"]])


@pytest.mark.parametrize("adapter", [None, "alpha", "beta"])
def test_matches_offline_scoring(http, offline, adapter):
    reply = http.post("/v1/classify", json={"texts": TEXTS, "adapter": adapter})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["adapter"] == adapter
    np.testing.assert_allclose(probs_of(body), offline[adapter], atol=1e-4)
    for result, row in zip(body["results"], offline[adapter]):
        assert result["raw_label"] == body["labels"][int(row.argmax())]
        assert result["raw_confidence"] == pytest.approx(row.max(), abs=1e-4)
        assert 0.0 <= result["other_mass"] <= 1.0


def test_adapters_answer_differently(offline, http):
    alpha = probs_of(http.post("/v1/classify", json={"texts": TEXTS, "adapter": "alpha"}).json())
    base = probs_of(http.post("/v1/classify", json={"texts": TEXTS}).json())
    assert np.abs(alpha - base).max() > 1e-3
    beta = http.post("/v1/classify", json={"texts": TEXTS, "adapter": "beta"}).json()
    assert beta["labels"] == ["negative", "unsure", "positive"]  # each adapter brings its own task


def test_calibration_and_decisions(http, adapters_dir):
    alpha = http.post("/v1/classify", json={"texts": TEXTS, "adapter": "alpha"}).json()
    calibrator = load_calibrator(adapters_dir / "alpha" / "calibrator.json")
    expected = calibrator.predict_proba(probs_of(alpha))
    np.testing.assert_allclose(probs_of(alpha, "calibrated_probs"), expected, atol=1e-9)
    assert (alpha["threshold"], alpha["decided_on"]) == (0.6, "calibrated")
    for result, row in zip(alpha["results"], expected):
        assert result["label"] == alpha["labels"][int(row.argmax())] and result["calibrated"]
        assert result["confidence"] == pytest.approx(row.max())
        assert result["decision"] == ("automate" if row.max() >= 0.6 else "review")
    assert alpha["guarantee"] == DecisionPolicy.load(adapters_dir / "alpha" / "policy.json").guarantee

    beta = http.post("/v1/classify", json={"texts": TEXTS, "adapter": "beta"}).json()
    assert (beta["threshold"], beta["decided_on"]) == (0.5, "raw")
    for result in beta["results"]:
        assert result["calibrated_probs"] is None and not result["calibrated"]
        assert result["confidence"] == result["raw_confidence"] and result["label"] == result["raw_label"]
        assert result["decision"] == ("automate" if result["confidence"] >= 0.5 else "review")

    base = http.post("/v1/classify", json={"texts": TEXTS}).json()
    assert (base["threshold"], base["decided_on"]) == (None, None)
    assert all(r["decision"] is None and r["calibrated_probs"] is None for r in base["results"])


def test_top_tokens(http):
    reply = http.post("/v1/classify", json={"texts": TEXTS[:2], "adapter": "alpha", "top_tokens": 5}).json()
    for result in reply["results"]:
        tokens = result["top_tokens"]
        assert [t["rank"] for t in tokens] == [1, 2, 3, 4, 5]
        assert all(a["prob"] >= b["prob"] for a, b in zip(tokens, tokens[1:]))
    plain = http.post("/v1/classify", json={"texts": TEXTS[:1]}).json()
    assert plain["results"][0]["top_tokens"] == []


def test_concurrent_requests_are_batched_and_stay_in_order(server, offline):
    """Many single-text requests for mixed adapters at once: each gets its own text's answer."""
    jobs = [(i % len(TEXTS), [None, "alpha", "beta"][i % 3]) for i in range(36)]

    def call(job):
        index, adapter = job
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/v1/classify", json={"texts": [TEXTS[index]], "adapter": adapter}).json()

    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(call, jobs))
    for (index, adapter), reply in zip(jobs, replies):
        np.testing.assert_allclose(probs_of(reply)[0], offline[adapter][index], atol=1e-4)
    metrics = httpx.get(server.url + "/metrics").text
    batches = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
               if line.startswith("confidently_batch_size_texts_")}
    assert batches["confidently_batch_size_texts_sum"] / batches["confidently_batch_size_texts_count"] > 1.0


def test_metrics_count_requests_texts_and_decisions(http):
    http.post("/v1/classify", json={"texts": TEXTS, "adapter": "alpha"})
    text = http.get("/metrics").text
    assert 'confidently_requests_total{route="/v1/classify",method="POST",status="200"}' in text
    assert 'confidently_request_duration_seconds_bucket{route="/v1/classify",le="+Inf"}' in text
    assert 'confidently_texts_total{adapter="alpha"}' in text
    assert 'confidently_decisions_total{adapter="(base)",decision="none"}' in text
    assert any(line.startswith('confidently_decisions_total{adapter="alpha",decision="')
               for line in text.splitlines())


def test_health_and_adapter_listing(http, weights_id):
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["adapters"] == 2 and health["weights_id"] == weights_id
    listing = http.get("/v1/adapters").json()
    assert listing["base"]["name"] is None and listing["base"]["calibrator"] is None
    alpha, beta = listing["adapters"]
    assert (alpha["name"], alpha["calibrator"], alpha["threshold"], alpha["task"]) == ("alpha", "temperature", 0.6,
                                                                                      "sentiment")
    assert (beta["name"], beta["calibrator"], beta["labels"]) == ("beta", None, ["negative", "unsure", "positive"])
    assert len(alpha["manifest_sha256"]) == 64 and len(alpha["weights_sha256"]) == 64
    assert alpha["base_weights_id"] == weights_id


def test_openapi_schema_is_served(http):
    schema = http.get("/openapi.json").json()
    assert {"/v1/classify", "/v1/adapters", "/v1/adapters/{name}", "/healthz", "/metrics"} <= set(schema["paths"])


def test_prediction_sets_and_the_set_rule_come_from_the_bundle(serve, tiny_backend, tmp_path):
    """The server applies the bundle's prediction sets and, when the bundle says so, decides by them."""
    from confidently.bundle.bundle import CONFORMAL_FILE, ModelIdentity, write_bundle
    from confidently.decision.conformal import ConformalPredictor

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(2), size=300)
    y = np.array([rng.choice(2, p=p) for p in probs])
    sets = ConformalPredictor(0.1).fit(probs, y)
    policy = DecisionPolicy(threshold=0.6, target_accuracy=0.9, certified=True, method="test", level=0.95)
    write_bundle(tmp_path, model=ModelIdentity.of(tiny_backend), task=SENTIMENT, chat=None, calibrator=None,
                 policy=policy, fitted_on={"rows_sha256": "0" * 64, "n_rows": 300},
                 extra_json={CONFORMAL_FILE: sets.to_dict()}, metadata={"decision_rule": "prediction_set"})
    with serve(calibration=tmp_path) as live:  # a fresh backend of the same weights: the shared one stays as it is
        with httpx.Client(base_url=live.url, timeout=60) as client:
            body = client.post("/v1/classify", json={"texts": TEXTS}).json()
    expected = sets.predict_set(probs_of(body))
    assert body["decision_rule"] == "prediction_set" and body["threshold"] is None
    assert body["guarantee"] == sets.decision_guarantee and body["set_guarantee"] == sets.guarantee
    for result, row in zip(body["results"], expected):
        assert result["prediction_set"] == [body["labels"][j] for j in np.flatnonzero(row)]
        assert result["decision"] == ("automate" if row.sum() == 1 else "review")


def test_bundles_without_prediction_sets_reply_null(http):
    body = http.post("/v1/classify", json={"texts": TEXTS, "adapter": "alpha"}).json()
    assert body["decision_rule"] == "threshold" and body["set_guarantee"] is None
    assert all(result["prediction_set"] is None for result in body["results"])
