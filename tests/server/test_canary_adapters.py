"""Canaries with tiny-model adapters: the right adapter passes; a zeroed (no-op) adapter and the adapter on
another base model fail, from ``confidently canary`` and when ``serve`` loads them."""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from confidently.bundle.bundle import ADAPTER_CONFIG_FILE, WEIGHTS_FILE, BundleMismatchError, read_bundle
from confidently.monitoring.canary import CANARY_FILE, Canary, CanaryFailedError
from confidently.cli.app import app
from confidently.tasks.task import SENTIMENT

from .conftest import ADMIN_TOKEN, make_adapter, rebundle

TEXTS = [f"canary text {i}: {'a wonderful film, I love it' if i % 2 else 'terrible and boring'}" for i in range(24)]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_model_dir, tiny_backend):
    """``good`` (with its canary in its bundle), ``zeroed`` (its LoRA B matrices zero: a no-op, re-bundled so
    every hash matches), and ``bare`` (its PEFT files only, as copied to another engine)."""
    import torch

    from confidently.scoring.classifier import Classifier

    root = tmp_path_factory.mktemp("canary-adapters")
    good = make_adapter(tiny_model_dir, root / "good", seed=11, weights_id=tiny_backend.weights_id,
                        model_name=str(tiny_model_dir))
    # A random LoRA barely moves the tiny model (~0.01); scaled up, it moves it like a trained one does.
    rebundle(good, lambda key, value: value * 30 if "lora_B" in key else value)
    tiny_backend.load_adapter(good, "canary-good")
    probs = Classifier(backend=tiny_backend, task=SENTIMENT).score(TEXTS).probs
    tiny_backend.unload_adapter("canary-good")
    canary = Canary.select(TEXTS, np.arange(len(TEXTS)) % 2, probs, task=SENTIMENT, size=16,
                           scored_with=read_bundle(good).model.to_dict())
    rebundle(good, extra_json={CANARY_FILE: canary.to_dict()})

    zeroed = root / "zeroed"
    shutil.copytree(good, zeroed)
    rebundle(zeroed, lambda key, value: torch.zeros_like(value) if "lora_B" in key else value)

    bare = root / "bare"
    bare.mkdir()
    for name in (ADAPTER_CONFIG_FILE, WEIGHTS_FILE):
        shutil.copy(good / name, bare / name)
    return {"good": good, "zeroed": zeroed, "bare": bare, "probs": probs}


def run_canary(*args: str):
    return CliRunner().invoke(app, ["canary", *args, "--device", "cpu", "--dtype", "float32", "--json"])


def test_the_right_adapter_passes(adapters, tiny_model_dir):
    result = run_canary(str(adapters["good"]))  # the bundle's own model
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] and report["max_deviation"] < 1e-4 and report["n"] == 16


def test_a_zeroed_adapter_fails(adapters, tiny_model_dir):
    result = run_canary(str(adapters["zeroed"]))
    assert isinstance(result.exception, CanaryFailedError), result.output
    report = json.loads(result.stdout)
    assert not report["passed"] and report["max_deviation"] > report["tolerance"]
    # A no-op adapter scores like the bare base model.
    base = json.loads(run_canary(str(adapters["good"]), "--no-adapter").stdout)
    assert report["max_deviation"] == pytest.approx(base["max_deviation"], abs=1e-5)


def test_the_adapter_on_another_base_fails(adapters, other_tiny_model_dir):
    from confidently.backends.transformers_backend import TransformersBackend
    from confidently.scoring.classifier import Classifier

    # Where the base weights can be fingerprinted, the bundle refuses them before anything is scored.
    refused = run_canary(str(adapters["good"]), "--model", str(other_tiny_model_dir))
    assert isinstance(refused.exception, BundleMismatchError), refused.output
    # Where they cannot (a copy of the PEFT files on another engine), the canary catches it.
    other = TransformersBackend(str(other_tiny_model_dir), device="cpu", dtype="float32")
    other.load_adapter(adapters["bare"], "copied")
    canary = Canary.from_bundle(read_bundle(adapters["good"]))
    check = canary.check(Classifier(backend=other, task=SENTIMENT).score(list(canary.texts)).probs)
    assert not check.passed and check.max_deviation > 10 * check.tolerance


def test_serve_refuses_or_marks_an_adapter_whose_canary_fails(serve, adapters, tmp_path):
    folder = tmp_path / "adapters"
    folder.mkdir()
    for name in ("good", "zeroed"):
        shutil.copytree(adapters[name], folder / name)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with serve(adapters_dir=folder) as live, httpx.Client(base_url=live.url, timeout=60) as http:
        assert [a["name"] for a in http.get("/v1/adapters").json()["adapters"]] == ["good"]  # zeroed refused
        assert http.get("/v1/adapters/good/drift").json()["canary"]["passed"] is True
        refused = http.post("/v1/adapters/zeroed", headers=admin)
        assert refused.status_code == 409 and "canary FAILED" in refused.json()["detail"]
        assert http.post("/v1/classify", json={"texts": ["x"], "adapter": "zeroed"}).status_code == 404
    with serve(adapters_dir=folder, canary="mark") as live, httpx.Client(base_url=live.url, timeout=60) as http:
        assert [a["name"] for a in http.get("/v1/adapters").json()["adapters"]] == ["good", "zeroed"]
        canary = http.get("/v1/adapters/zeroed/drift").json()["canary"]
        assert canary["passed"] is False and canary["max_deviation"] > canary["tolerance"]
        assert 'confidently_canary_passed{adapter="zeroed"} 0.0' in http.get("/metrics").text.splitlines()
