"""``serve --backend openai``: the decision path in front of an OpenAI-compatible serving engine.

The engine is the fake OpenAI-compatible server (tests/fake_server.py) serving the tiny model's own
next-token distribution under model names, as vLLM serves a base model and its LoRA adapters. So a
reply through the engine can be compared number for number with the same bundle served locally.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from fake_server import FakeServer, model_distribution
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from confidently.backends.openai_backend import OpenAIBackend
from confidently.bundle.bundle import read_bundle, write_bundle
from confidently.decision.calibrated import CalibratedClassifier
from confidently.monitoring.canary import CANARY_FILE, Canary, CanaryFailedError
from confidently.scoring.classifier import Classifier
from confidently.cli.app import app
from confidently.data import Dataset
from confidently.errors import BundleMismatchError, ConfigError
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate
from confidently.scorers import ScorerSpec
from confidently.server.app import create_app
from confidently.server.metrics import Metrics
from confidently.server.service import Service
from confidently.server.settings import Settings
from confidently.tasks.task import SENTIMENT

from .conftest import ADMIN_TOKEN, LiveServer, make_adapter, rebundle

WORDS = ["great", "love", "wonderful", "terrible", "awful", "boring", "film", "plot"]
TEXTS = ["the movie was great", "I hate it", "awful and boring", "a wonderful film, I love it", "it rained"]
CONFIG = EvaluationConfig(methods=("platt",), budget_repeats=1, n_resamples=50)


def rows(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, 3)) + f" {i}" for i in range(n)]
    return Dataset(texts, ["positive" if i % 2 else "negative" for i in range(n)])


def evaluated(classifier: Classifier, folder):
    """A bundle as `confidently evaluate` writes it (calibrator, policy, prediction sets, canary, reference)."""
    run_evaluate(classifier, rows(20, 0), rows(20, 1), folder, config=CONFIG, progress=False)
    return folder


@pytest.fixture(scope="module")
def base_bundle(tiny_backend, tmp_path_factory):
    """Fitted on the local tiny model."""
    tiny_backend.set_adapter(None)
    return evaluated(Classifier(backend=tiny_backend), tmp_path_factory.mktemp("local-run"))


@pytest.fixture(scope="module")
def engine_adapters(tiny_backend, tiny_model_dir, tmp_path_factory):
    """``alpha`` (finetune-style, with a canary scored locally) and ``beta`` (without one)."""
    root = tmp_path_factory.mktemp("engine-adapters")
    alpha = make_adapter(tiny_model_dir, root / "alpha", seed=1, weights_id=tiny_backend.weights_id,
                         model_name=str(tiny_model_dir))
    rebundle(alpha, lambda key, value: value * 30 if "lora_B" in key else value)  # moves the model visibly
    tiny_backend.load_adapter(alpha, "engine-alpha")
    try:
        probs = Classifier(backend=tiny_backend).score(rows(16, 2).texts).probs
    finally:
        tiny_backend.unload_adapter("engine-alpha")
    canary = Canary.select(rows(16, 2).texts, np.arange(16) % 2, probs, task=SENTIMENT, size=8)
    rebundle(alpha, extra_json={CANARY_FILE: canary.to_dict()})
    make_adapter(tiny_model_dir, root / "beta", seed=2, weights_id=tiny_backend.weights_id,
                 model_name=str(tiny_model_dir))
    return root


@pytest.fixture(scope="module")
def engine_weights(tiny_model_dir, engine_adapters):
    """The weights the engine serves: the tiny model, with alpha loaded."""
    from confidently.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(str(tiny_model_dir), device="cpu", dtype="float32")
    backend.load_adapter(engine_adapters / "alpha", "alpha", activate=False)
    return backend


@pytest.fixture
def engine(engine_weights, tiny_model_dir):
    """The engine: the base model under its folder's name, alpha under ``alpha-v2``."""
    with FakeServer() as server:
        server.behaviour.token_ids = True
        server.behaviour.models = {str(tiny_model_dir): model_distribution(engine_weights),
                                   "alpha-v2": model_distribution(engine_weights, "alpha")}
        yield server


def engine_settings(engine, tiny_model_dir, **options) -> Settings:
    return Settings(model=str(tiny_model_dir), backend="openai", base_url=engine.url, admin_token=ADMIN_TOKEN,
                    engine_models={"alpha": "alpha-v2"}, **options)


def classify(http: httpx.Client, adapter: str | None = None) -> dict:
    reply = http.post("/v1/classify", json={"texts": TEXTS, "adapter": adapter})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_the_engine_gives_the_local_answers_decisions_and_prediction_sets(serve, tiny_model_dir, base_bundle,
                                                                         engine_adapters, engine, tmp_path):
    options = {"calibration": base_bundle, "adapters_dir": engine_adapters}
    # Every text also enters the review queue (an audit fraction of 1), which works as locally.
    remote_settings = engine_settings(engine, tiny_model_dir, feedback_db=str(tmp_path / "feedback.db"),
                                      audit_fraction=1.0, **options)
    with serve(**options) as local, LiveServer(create_app(remote_settings)) as \
            remote, httpx.Client(base_url=local.url, timeout=60) as here, \
            httpx.Client(base_url=remote.url, timeout=60) as there:
        listed = there.get("/v1/adapters").json()
        # beta's bundle has no canary, and nothing else can show the engine serves its weights: refused.
        assert [a["name"] for a in listed["adapters"]] == ["alpha"]
        assert [a["name"] for a in here.get("/v1/adapters").json()["adapters"]] == ["alpha", "beta"]
        alpha = listed["adapters"][0]
        assert (alpha["engine_model"], alpha["weights_checked_by"]) == ("alpha-v2", "canary")
        assert (listed["base"]["engine_model"], listed["base"]["weights_checked_by"]) == (str(tiny_model_dir), "canary")
        assert there.get("/v1/adapters/alpha/drift").json()["canary"]["passed"] is True
        for adapter in (None, "alpha"):
            mine, theirs = classify(here, adapter), classify(there, adapter)
            assert theirs["bundle_version"] == mine["bundle_version"] and theirs["threshold"] == mine["threshold"]
            # The base bundle (from evaluate) brings prediction sets, alpha's a temperature calibrator.
            assert all(r["prediction_set"] is not None if adapter is None else r["calibrated"]
                       for r in theirs["results"])
            for a, b in zip(mine["results"], theirs["results"], strict=True):
                assert (b["label"], b["decision"], b["prediction_set"], b["calibrated"]) == \
                       (a["label"], a["decision"], a["prediction_set"], a["calibrated"])
                assert b["confidence"] == pytest.approx(a["confidence"], rel=1e-4)
                for label in SENTIMENT.label_names:
                    assert b["raw_probs"][label] == pytest.approx(a["raw_probs"][label], rel=1e-4, abs=1e-6)
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        queued = there.get("/v1/review/next", headers=admin).json()
        assert queued["pending"] == 2 * len(TEXTS) and queued["item"]["text"] in TEXTS
        item = queued["item"]
        labelled = there.post(f"/v1/review/{item['request_id']}/{item['position']}", headers=admin,
                              json={"label": "positive"})
        assert labelled.status_code == 200, labelled.text
        families = {f.name: f for f in text_string_to_metric_families(there.get("/metrics").text)}
        window = {s.labels["adapter"]: s.value for s in families["confidently_drift_window_texts"].samples}
        assert window[Metrics.BASE] == len(TEXTS)  # drift is measured on the engine's scores
    assert {body["model"] for body in engine.requests} == {str(tiny_model_dir), "alpha-v2"}


def test_a_bundle_the_engine_cannot_vouch_for_is_refused(tiny_model_dir, other_tiny_model_dir, base_bundle, engine,
                                                         tmp_path):
    from confidently.backends.transformers_backend import TransformersBackend

    def start(**options) -> Service:
        return Service.start(engine_settings(engine, tiny_model_dir, **options), Metrics())

    # Other weights behind the base model's name: the canary re-scored through the engine fails.
    other = TransformersBackend(str(other_tiny_model_dir), device="cpu", dtype="float32")
    engine.behaviour.models = {str(tiny_model_dir): model_distribution(other)}
    with pytest.raises(CanaryFailedError, match="the base model refused: canary FAILED"):
        start(calibration=base_bundle)
    marked = start(calibration=base_bundle, canary="mark")
    try:
        assert not marked.registry.canaries[Metrics.BASE].passed
    finally:
        marked.stop()
    # Fitted elsewhere and nothing to re-score, or told not to: refused before any scoring.
    with pytest.raises(BundleMismatchError, match="--canary off skips it"):
        start(calibration=base_bundle, canary="off")
    bundle = read_bundle(base_bundle)
    write_bundle(tmp_path / "no-canary", model=bundle.model, task=bundle.task, chat=bundle.chat,
                 calibrator=bundle.calibrator, policy=bundle.policy, fitted_on=bundle.fitted_on)
    requests = len(engine.requests)
    with pytest.raises(BundleMismatchError, match="the bundle carries no canary.json"):
        start(calibration=tmp_path / "no-canary")
    assert len(engine.requests) == requests


def test_a_black_box_bundle_fitted_through_the_engine_is_served_through_it(tiny_model_dir, engine, tmp_path):
    # An engine that returns no logprobs to this scorer: sampled answers, a function of the text and seed.
    engine.behaviour.answer = lambda prompt, seed: "yes" if (("love" in prompt) != (seed % 4 == 0)) else "no"
    spec = ScorerSpec.make("consistency", samples=3, seed=5)
    fitted_through = OpenAIBackend(str(tiny_model_dir), base_url=engine.url, max_retries=0)
    folder = evaluated(Classifier(backend=fitted_through, scorer=spec), tmp_path / "run")
    assert read_bundle(folder).model.weights_id == f"server:{engine.url}#{tiny_model_dir}"
    service = Service.start(engine_settings(engine, tiny_model_dir, calibration=folder), Metrics())
    try:
        base = service.registry.base
        assert base.weights_checked_by == "engine" and base.classifier.scorer == spec
        assert service.registry.canaries[Metrics.BASE].max_deviation == 0  # the same seeds, the same answers
        served = base.classify(TEXTS)
    finally:
        service.stop()
    direct = CalibratedClassifier(Classifier(backend=fitted_through, scorer=spec), bundle=folder).classify_many(TEXTS)
    assert [(r.label, r.confidence, r.decision, r.prediction_set) for r in served] == \
           [(p.label, p.confidence, p.decision, p.prediction_set) for p in direct]
    assert all(r.prediction_set is not None for r in served)  # the bundle's sets, on the engine's scores
    asked = [body for body in engine.requests if "seed" in body]
    assert asked and not any(body.get("logprobs") for body in asked)
    # Fitted through this engine and model name: no canary needed to match it.
    Service.start(engine_settings(engine, tiny_model_dir, calibration=folder, canary="off"), Metrics()).stop()


def test_engine_failures_fail_only_the_requests_they_concern(tiny_model_dir, base_bundle, engine_adapters, engine):
    settings = engine_settings(engine, tiny_model_dir, calibration=base_bundle, adapters_dir=engine_adapters,
                               engine_timeout_s=0.5)
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=60) as http:
        engine.behaviour.mode, engine.behaviour.status = "status", 503
        failed = http.post("/v1/classify", json={"texts": ["fresh text one"]})
        assert failed.status_code == 502, failed.text
        # (absolute paths never reach a reply: the model folder's name stands for it)
        assert failed.json()["detail"].startswith(f"the base model (engine model '{tiny_model_dir.name}'):")
        assert "HTTP 503" in failed.json()["detail"]
        engine.behaviour.mode, engine.behaviour.delay = "ok", 3.0
        slow = http.post("/v1/classify", json={"texts": ["fresh text two"]})
        assert slow.status_code == 504 and "did not answer within 0.5 s" in slow.json()["detail"]
        engine.behaviour.delay = 0.0
        # The engine stops serving alpha's model name: alpha's requests fail, the base model's do not.
        del engine.behaviour.models["alpha-v2"]
        refused = http.post("/v1/classify", json={"texts": ["fresh text three"], "adapter": "alpha"})
        assert refused.status_code == 502 and "does not exist" in refused.json()["detail"]
        assert "adapter 'alpha' (engine model 'alpha-v2')" in refused.json()["detail"]
        assert http.post("/v1/classify", json={"texts": ["fresh text three"]}).status_code == 200
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("args, expected", [
    (["--backend", "openai"], "give its URL with --base-url"),
    (["--base-url", "http://127.0.0.1:9/v1"], "apply to --backend openai"),
    (["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--engine-model", "alpha"], "expected ADAPTER=NAME"),
])
def test_engine_options_are_checked_before_anything_loads(args, expected, tiny_model_dir):
    result = CliRunner().invoke(app, ["serve", "--model", str(tiny_model_dir), "--feedback-db", "none", *args])
    assert result.exit_code != 0
    message = str(result.exception) if isinstance(result.exception, ConfigError) else result.output
    assert expected in message
