"""The base model's --calibration bundle gets what adapters get: its canary is run at start-up (refused or
marked when it fails), and recalibrated versions are applied without a restart."""

from __future__ import annotations

import numpy as np
import pytest

from confidently.bundle.bundle import ModelIdentity, write_bundle
from confidently.bundle.versions import write_version
from confidently.monitoring.canary import CANARY_FILE, Canary, CanaryFailedError
from confidently.scoring.classifier import Classifier
from confidently.server.metrics import Metrics
from confidently.server.service import Service
from confidently.server.settings import Settings
from confidently.tasks.task import SENTIMENT
from confidently.decision.policy import DecisionPolicy

TEXTS = [f"base canary {i}: {'lovely, warm and funny' if i % 2 else 'dull, slow and far too long'}" for i in range(12)]
POLICY = DecisionPolicy(threshold=0.6, target_accuracy=0.9, certified=True, method="test", level=0.95)


def evaluate_style_bundle(folder, backend, recorded: np.ndarray):
    """A bundle as `confidently evaluate` writes it for the bare base model, with a canary of ``recorded``."""
    canary = Canary.select(TEXTS, np.arange(len(TEXTS)) % 2, recorded, task=SENTIMENT, size=8)
    return write_bundle(folder, model=ModelIdentity("tiny", "transformers", backend.weights_id, "float32"),
                        task=SENTIMENT, chat=None, calibrator=None, policy=POLICY,
                        fitted_on={"rows_sha256": "0" * 64, "n_rows": len(TEXTS)},
                        extra_json={CANARY_FILE: canary.to_dict()})


@pytest.fixture(scope="module")
def base_probs(tiny_backend):
    tiny_backend.set_adapter(None)
    return Classifier(backend=tiny_backend, task=SENTIMENT).score(TEXTS).probs


def start(backend, tiny_model_dir, folder, **options) -> Service:
    settings = Settings(model=str(tiny_model_dir), calibration=folder, **options)
    return Service.start(settings, Metrics(), backend)


def test_the_base_bundles_canary_runs_at_start(tiny_backend, tiny_model_dir, base_probs, tmp_path):
    evaluate_style_bundle(tmp_path / "right", tiny_backend, base_probs)
    service = start(tiny_backend, tiny_model_dir, tmp_path / "right")
    try:
        check = service.registry.canaries[Metrics.BASE]
        assert check.passed and check.max_deviation < 1e-5 and check.n == 8
    finally:
        service.stop()
    # Recorded on a model that scored 20% of the mass differently: refused, or served and marked.
    moved = 0.8 * base_probs + 0.2 * np.array([1.0, 0.0])
    evaluate_style_bundle(tmp_path / "moved", tiny_backend, moved)
    with pytest.raises(CanaryFailedError, match="the base model refused: canary FAILED"):
        start(tiny_backend, tiny_model_dir, tmp_path / "moved")
    marked = start(tiny_backend, tiny_model_dir, tmp_path / "moved", canary="mark")
    try:
        assert not marked.registry.canaries[Metrics.BASE].passed
    finally:
        marked.stop()


def test_a_new_version_of_the_base_bundle_is_applied_without_a_restart(tiny_backend, tiny_model_dir, base_probs,
                                                                        tmp_path):
    root = evaluate_style_bundle(tmp_path / "run", tiny_backend, base_probs)
    service = start(tiny_backend, tiny_model_dir, tmp_path / "run")
    try:
        base = service.registry.base
        assert base.version == 1 and base.bundle_version == f"{root.manifest_sha256[:12]}.v1"
        service.registry.refresh_versions()
        assert service.registry.base is base  # nothing newer: the same entry
        assert "automate" in [r.decision for r in base.classify(TEXTS)]  # threshold 0.6
        stricter = DecisionPolicy(threshold=None, target_accuracy=0.99, certified=False, method="test", level=0.95)
        written = write_version(root, 2, calibrator=None, policy=stricter,
                                fitted_on={"rows_sha256": "0" * 64, "n_rows": len(TEXTS)})
        service.registry.refresh_versions()
        newer = service.registry.base
        assert newer.version == 2 and newer.bundle_version == written.label
        assert newer.calibrated.policy == stricter and newer.info().bundle_version == written.label
        assert {r.decision for r in newer.classify(TEXTS)} == {"review"}  # no certified threshold: all reviewed
    finally:
        service.stop()


def sets_bundle(folder, backend, *, rule: str):
    """A base-model bundle carrying prediction sets fitted per ``domain``, deciding by ``rule``."""
    from confidently.bundle.bundle import CONFORMAL_FILE
    from test_prediction_sets import fitted_sets

    sets = fitted_sets(condition_on="group", group_column="domain")
    return write_bundle(folder, model=ModelIdentity("tiny", "transformers", backend.weights_id, "float32"),
                        task=SENTIMENT, chat=None, calibrator=None, policy=POLICY,
                        fitted_on={"rows_sha256": "0" * 64, "n_rows": len(TEXTS)}, metadata={"decision_rule": rule},
                        extra_json={CONFORMAL_FILE: sets.to_dict()})


def test_a_bundle_deciding_by_sets_per_slice_is_refused_at_start(tiny_backend, tiny_model_dir, tmp_path):
    from confidently.errors import ArtifactError

    sets_bundle(tmp_path / "run", tiny_backend, rule="prediction_set")
    with pytest.raises(ArtifactError, match="fitted per domain, but a classify request carries no domain value"):
        start(tiny_backend, tiny_model_dir, tmp_path / "run")


def test_replies_promise_no_sets_they_cannot_carry(tiny_backend, tiny_model_dir, tmp_path):
    import asyncio

    from confidently.server.schemas import ClassifyRequest

    sets_bundle(tmp_path / "run", tiny_backend, rule="threshold")
    service = start(tiny_backend, tiny_model_dir, tmp_path / "run")
    try:
        _, reply = asyncio.run(service.score(ClassifyRequest(texts=TEXTS[:2])))
    finally:
        service.stop()
    assert reply.decision_rule == "threshold" and reply.threshold == POLICY.threshold
    assert [r.prediction_set for r in reply.results] == [None, None] and reply.set_guarantee is None


def test_the_reply_schema_says_when_the_threshold_is_null():
    from confidently.server.schemas import ClassifyResponse

    said = ClassifyResponse.model_json_schema()["properties"]["threshold"]["description"]
    assert "null when the prediction-set rule decides" in said
