"""The loop after deployment for a hidden-state probe and a prompt ensemble's combiner, end to end on the tiny
model: ``evaluate`` keeps the calibration rows' features in the bundle, the server logs each text's
features beside its decision, reviewers label, and ``recalibrate`` refits the probe or combiner on both
and writes a new version, as it does for Platt or isotonic bundles."""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from confidently.bundle.bundle import read_bundle
from confidently.calibration.ensemble import PromptCombiner
from confidently.calibration.probe import HiddenStateProbe
from confidently.cli.app import app
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.errors import ArtifactError, DataError
from confidently.feedback import LoggedText, open_store
from confidently.feedback.features import FEATURES_FILE, feature_space
from confidently.feedback.recalibration import CalibrationRows, recalibrate
from confidently.scoring.classifier import Classifier
from confidently.tasks.task import SENTIMENT, read_prompts
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate

REVIEWERS = {"ann": "ann-token-0123456789"}
ANN = {"Authorization": f"Bearer {REVIEWERS['ann']}"}
CONFIG = EvaluationConfig(methods=(), budget_sizes=(30,), budget_repeats=1, n_resamples=30)
PROMPTS = [  # label words the tiny test vocabulary spells
    {"template": "Review: {text}\nIs the review positive?", "words": {"negative": ["false"], "positive": ["true"]}},
    {"name": "plain", "template": "{text}\nSentiment, positive or negative?",
     "words": {"negative": ["negative"], "positive": ["positive"]}},
]


def prompts_file(folder):
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    return path


@pytest.fixture(scope="module")
def splits():
    return split_dataset(generate_sentiment(600, seed=5), seed=5)


def evaluated(model_dir, splits, out, *, task=SENTIMENT, probe=False):
    """``confidently evaluate`` on the tiny model, with only the probe or combiner competing (so it ships)."""
    clf = Classifier(model=str(model_dir), dtype="float32", task=task)
    run_evaluate(clf, splits.calibration, stratified_sample(splits.test, 40, seed=5), out, config=CONFIG,
                 progress=False, probe=probe)
    return read_bundle(out)


@pytest.fixture(scope="module")
def probe_bundle(tiny_model_dir, splits, tmp_path_factory):
    return evaluated(tiny_model_dir, splits, tmp_path_factory.mktemp("probe-run"), probe=True)


@pytest.fixture(scope="module")
def ensemble_bundle(tiny_model_dir, splits, tmp_path_factory):
    return evaluated(tiny_model_dir, splits, tmp_path_factory.mktemp("ensemble-run"),
                     task=read_prompts(prompts_file(tmp_path_factory.mktemp("prompts")), SENTIMENT))


def served_and_reviewed(serve, bundle, splits, db, n=120):
    """Serve ``bundle`` for the base model, classify ``n`` unseen texts, and label every one as reviewers would
    if the traffic had turned positive (9 in 10 positive, whatever the text): a calibrator fitted on the
    balanced calibration rows is then demonstrably wrong about it."""
    texts = list(splits.train.texts[:n])
    with serve(calibration=bundle.folder, feedback_db=str(db), audit_fraction=1.0, reviewer_tokens=REVIEWERS) as live, \
            httpx.Client(base_url=live.url, timeout=120) as http:
        for start in range(0, n, 60):
            reply = http.post("/v1/classify", json={"texts": texts[start:start + 60]}).json()
            assert reply["results"][0]["calibrated"] and "features" not in reply["results"][0]  # never sent
            for i in range(len(reply["results"])):
                label = "negative" if (start + i) % 10 == 0 else "positive"
                ok = http.post("/v1/feedback", json={"request_id": reply["request_id"], "position": i,
                                                     "label": label}, headers=ANN)
                assert ok.status_code == 200, ok.text
    return db


@pytest.fixture(scope="module")
def probe_db(serve, probe_bundle, splits, tmp_path_factory):
    return served_and_reviewed(serve, probe_bundle, splits, tmp_path_factory.mktemp("probe-loop") / "feedback.db")


@pytest.fixture(scope="module")
def ensemble_db(serve, ensemble_bundle, splits, tmp_path_factory):
    return served_and_reviewed(serve, ensemble_bundle, splits, tmp_path_factory.mktemp("ensemble-loop") / "feedback.db")


def copied(bundle, db, tmp_path):
    """Copies of a module's bundle and store, so a test's new versions and rows stay its own."""
    shutil.copytree(bundle.folder, tmp_path / "bundle")
    shutil.copy(db, tmp_path / "feedback.db")
    return read_bundle(tmp_path / "bundle"), tmp_path / "feedback.db"


@pytest.mark.parametrize("kind", ["probe", "ensemble"])
def test_a_probe_or_combiner_is_refitted_from_the_features_the_server_logged(kind, request, splits, tiny_backend,
                                                                             tmp_path):
    bundle, db = copied(request.getfixturevalue(f"{kind}_bundle"), request.getfixturevalue(f"{kind}_db"), tmp_path)
    calibrator_type, dim = (HiddenStateProbe, 32) if kind == "probe" else (PromptCombiner, 3 * 2)
    assert type(bundle.calibrator) is calibrator_type
    # evaluate kept the calibration rows' features (the scoring pass's, float32) beside their JSON, hashed
    rows = CalibrationRows.from_bundle(bundle)
    assert FEATURES_FILE in bundle.files and rows.features.shape == (len(rows.y), dim)
    rescored = Classifier(backend=tiny_backend, task=bundle.task).score(list(splits.calibration.texts[:4]), hidden=True)
    np.testing.assert_allclose(rows.features[:4], rescored.hidden, rtol=1e-4, atol=1e-6)
    space = feature_space(bundle)
    assert space.startswith(f"{kind}:")
    with open_store(db) as store:
        logged = store.labelled(None)
        assert len(logged) == 120 and {(r.features.space, r.features.dim) for r in logged} == {(space, dim)}
        # what the server logged is what its calibrator read: it gives back the label the server answered
        served = bundle.calibrator.predict_proba(np.stack([r.features.values() for r in logged])).argmax(1)
        assert [bundle.task.label_names[j] for j in served] == [r.model_label for r in logged]
        result = recalibrate(bundle.folder, store, adapter=None, seed=0, n_resamples=300)
    report = result.report
    assert report["reads"].startswith("a hidden-state probe" if kind == "probe" else "a prompt ensemble's combiner")
    assert report["features"] == space and report["n_feedback_without_features"] == 0
    assert report["n_feedback"] == 120 and report["n_held_out"] == 36
    assert result.adopted and report["nll_difference"]["high"] < 0, result.describe()
    version = read_bundle(result.folder)
    assert type(version.calibrator) is calibrator_type and version.calibrator.n_features_ == dim
    assert version.calibrator.n_samples_ == len(rows.y) + 84  # the calibration rows and the reviewed training labels
    assert version.policy.target_accuracy == bundle.policy.target_accuracy
    assert feature_space(version) == space  # a new version reads the same features: rows logged under it still count


def test_labels_logged_without_features_are_left_out_and_counted(probe_bundle, probe_db, tmp_path):
    bundle, db = copied(probe_bundle, probe_db, tmp_path)
    with open_store(db) as store:  # 30 more reviewed texts, logged as a server that kept no features logs them
        store.record("older-server", None, None, [
            LoggedText(position=i, label="positive", confidence=0.9, decision="review", queue="review",
                       probs={"negative": 0.1, "positive": 0.9}, text=f"old text {i}") for i in range(30)])
        for i in range(30):
            store.label("older-server", i, "positive", reviewer="ann")
    result = CliRunner().invoke(app, ["recalibrate", str(bundle.folder), "--feedback", str(db)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote version 2: on 36 held-out labels")
    assert "(30 reviewed labels were logged without the features the calibrator reads" in " ".join(result.stdout.split())
    report = read_bundle(bundle.folder / "versions" / "v2").extras["recalibration.json"]
    assert report["n_feedback"] == 120 and report["n_feedback_without_features"] == 30


def test_features_of_another_model_are_refused_in_one_line(other_tiny_model_dir, splits, probe_bundle, probe_db,
                                                          tmp_path):
    # A probe fitted on another model's hidden states (same size, other weights) must not refit on these.
    other = evaluated(other_tiny_model_dir, splits, tmp_path / "other", probe=True)
    assert other.calibrator.n_features_ == 32 and feature_space(other) != feature_space(probe_bundle)
    with open_store(probe_db) as store, pytest.raises(DataError) as refused:
        recalibrate(other.folder, store, adapter=None)
    assert "120 reviewed labels of the base model carry features of another model, adapter or prompt set" in \
        str(refused.value)
    result = CliRunner().invoke(app, ["recalibrate", str(other.folder), "--feedback", str(probe_db)])
    assert result.exit_code != 0 and "carry features of another model" in str(result.exception)
    assert not (other.folder / "versions").exists()


@pytest.mark.model
def test_real_model_probe_loop(gemma_classifier, serve_backend, tmp_path):
    # The same path on gemma-3-270m's hidden states (640 values): evaluate, serve, review, recalibrate.
    data = split_dataset(generate_sentiment(300, seed=11), seed=11)
    calibration, test = stratified_sample(data.calibration, 30, seed=1), stratified_sample(data.test, 10, seed=1)
    clf = Classifier(backend=gemma_classifier.backend)
    run_evaluate(clf, calibration, test, tmp_path / "run", config=CONFIG, progress=False, probe=True)
    bundle = read_bundle(tmp_path / "run")
    assert isinstance(bundle.calibrator, HiddenStateProbe)
    assert CalibrationRows.from_bundle(bundle).features.shape == (30, 640)
    texts = list(data.train.texts[:40])
    with serve_backend(gemma_classifier.backend, calibration=bundle.folder, feedback_db=str(tmp_path / "f.db"),
                       audit_fraction=1.0, reviewer_tokens=REVIEWERS) as live, \
            httpx.Client(base_url=live.url, timeout=300) as http:
        reply = http.post("/v1/classify", json={"texts": texts}).json()
        for i, truth in enumerate(data.train.labels[:40]):
            assert http.post("/v1/feedback", json={"request_id": reply["request_id"], "position": i, "label": truth},
                             headers=ANN).status_code == 200
    with open_store(tmp_path / "f.db") as store:
        logged = store.labelled(None)
        assert {(r.features.dim, len(r.features.blob), r.features.space) for r in logged} == \
            {(640, 2560, feature_space(bundle))}
        served = bundle.calibrator.predict_proba(np.stack([r.features.values() for r in logged])).argmax(1)
        assert [bundle.task.label_names[j] for j in served] == [r.model_label for r in logged]
        result = recalibrate(bundle.folder, store, adapter=None, holdout=0.5, n_resamples=300)
    report = result.report
    assert report["n_feedback"] == 40 and report["n_held_out"] == 20 and report["n_feedback_without_features"] == 0
    assert report["nll_new"] > 0 and report["nll_old"] > 0
    if result.adopted:
        version = read_bundle(result.folder).calibrator
        assert version.n_features_ == 640 and version.n_samples_ == 30 + 20
    else:
        assert result.folder is None and "not demonstrably better" in report["reason"]


def test_the_calibration_features_are_hashed_in_the_manifest(probe_bundle, tmp_path):
    shutil.copytree(probe_bundle.folder, tmp_path / "bundle")
    path = tmp_path / "bundle" / FEATURES_FILE
    data = bytearray(path.read_bytes())
    data[-4:] = np.float32(7.0).tobytes()  # one feature changed
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{FEATURES_FILE} changed since the bundle was written"):
        read_bundle(tmp_path / "bundle")


def test_a_fine_tuned_ensemble_adapter_is_recalibrated_from_what_the_server_logged(serve, tiny_model_dir, splits,
                                                                                   tmp_path):
    # finetune trains every prompt and ships the combiner; served as an adapter, its texts' prompt masses are
    # logged under a feature space that names the adapter's weights; `recalibrate ADAPTER_DIR` refits it.
    from confidently.backends.transformers_backend import TransformersBackend
    from confidently.finetune import FinetuneConfig, finetune

    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(read_prompts(prompts_file(tmp_path), SENTIMENT).to_dict()))
    config = FinetuneConfig(model=str(tiny_model_dir), task=str(prompts), batch_size=8, epochs=1, learning_rate=3e-3,
                            target_modules=("q_proj", "v_proj"), patience=0, seed=0)
    finetune(generate_sentiment(300, seed=21), tmp_path / "adapters" / "ens", config,
             backend=TransformersBackend(str(tiny_model_dir), dtype="float32"), progress=False)
    bundle = read_bundle(tmp_path / "adapters" / "ens")
    assert isinstance(bundle.calibrator, PromptCombiner) and bundle.is_adapter
    space = feature_space(bundle)
    texts, db = list(splits.train.texts[:120]), tmp_path / "feedback.db"
    with serve(adapters_dir=tmp_path / "adapters", feedback_db=str(db), audit_fraction=1.0,
               reviewer_tokens=REVIEWERS) as live, httpx.Client(base_url=live.url, timeout=120) as http:
        for start in range(0, 120, 60):
            reply = http.post("/v1/classify", json={"texts": texts[start:start + 60], "adapter": "ens"}).json()
            for i in range(60):
                label = "negative" if (start + i) % 10 == 0 else "positive"
                assert http.post("/v1/feedback", json={"request_id": reply["request_id"], "position": i,
                                                       "label": label}, headers=ANN).status_code == 200
    with open_store(db) as store:
        assert {r.features.space for r in store.labelled("ens")} == {space}
    result = CliRunner().invoke(app, ["recalibrate", str(bundle.folder), "--feedback", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["adapter"] == "ens" and report["features"] == space and report["n_feedback"] == 120
    assert report["adopted"] and isinstance(read_bundle(report["folder"]).calibrator, PromptCombiner)
