"""The hidden-state probe end to end: hidden states from the scoring pass, cached, in the bundle, decided."""

from __future__ import annotations

import numpy as np
import pytest

from confidently.bundle.bundle import PROBE_FILE, ModelIdentity, read_bundle, write_bundle
from confidently.calibration.probe import HiddenStateProbe
from confidently.scoring.classifier import Classifier
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.decision.calibrated import CalibratedClassifier
from confidently.decision.decisions import decide
from confidently.errors import ConfigError
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate
from confidently.scoring.checkpointed import ScoreStore, score_with_store, text_key
from confidently.decision.policy import DecisionPolicy

POLICY = DecisionPolicy(0.6, 0.9, True, "ltt", 0.95)


def labelled(n=80, seed=3):
    data = generate_sentiment(n, seed=seed)
    return list(data.texts), np.array([0 if label == "negative" else 1 for label in data.labels])


def test_hidden_states_come_from_the_scoring_pass(tiny_backend):
    import torch

    clf = Classifier(backend=tiny_backend, batch_size=4)
    texts = ["I love it", "terrible film, I hate it", "the movie was great", "boring"]
    clf.score(texts[:1])  # the shared prefix is computed (or was, by an earlier test) and cached
    calls = []
    hook = tiny_backend.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        with_hidden = clf.score(texts, hidden=True)
    finally:
        hook.remove()
    assert len(calls) == 1  # one pass for the batch: no second pass for the states
    plain = clf.score(texts)
    np.testing.assert_array_equal(with_hidden.mass, plain.mass)
    assert plain.hidden is None and with_hidden.hidden.dtype == np.float32
    assert with_hidden.hidden.shape == (4, tiny_backend.model.config.hidden_size)
    ids = torch.tensor([tiny_backend.encode_prompt(clf.prompt(texts[1]))])
    with torch.inference_mode():
        reference = tiny_backend.model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
    np.testing.assert_allclose(with_hidden.hidden[1], reference.numpy(), atol=1e-4)


def test_the_score_store_keeps_hidden_states(tiny_backend, tmp_path):
    clf = Classifier(backend=tiny_backend)
    texts, _ = labelled(12)
    store = ScoreStore(tmp_path / "cache", clf.fingerprint(), clf.labels)
    plain = score_with_store(clf, texts[:6], store, progress=False)
    assert plain.hidden is None
    first = score_with_store(clf, texts, store, progress=False, hidden=True)  # rows without states are rescored
    again = score_with_store(clf, list(reversed(texts)), ScoreStore(tmp_path / "cache", clf.fingerprint(), clf.labels),
                             progress=False, hidden=True)
    np.testing.assert_array_equal(again.hidden, first.hidden[::-1])
    keys, stored = ScoreStore(tmp_path / "cache", clf.fingerprint(), clf.labels).load(hidden=True)
    assert {text_key(t) for t in texts} <= set(keys) and stored.hidden.shape[0] == len(keys)


def test_a_probe_bundle_is_served_through_decide(tiny_backend, tmp_path):
    clf = Classifier(backend=tiny_backend)
    texts, y = labelled()
    scores = clf.score(texts, hidden=True)
    probe = HiddenStateProbe(classes=list(clf.labels)).fit(scores.hidden, y, n_classes=2)
    bundle = write_bundle(tmp_path, model=ModelIdentity.of(tiny_backend), task=clf.task, chat=clf.chat,
                          calibrator=probe, policy=POLICY, fitted_on={"rows_sha256": "x", "n_rows": len(texts)})
    assert PROBE_FILE in bundle.files and "calibrator.json" not in bundle.files
    loaded = read_bundle(tmp_path).calibrator
    assert isinstance(loaded, HiddenStateProbe)
    calibrated = CalibratedClassifier(clf, bundle=tmp_path)
    assert calibrated.reads_hidden
    expected = probe.predict_proba(scores.hidden[:5])
    many = calibrated.classify_many(texts[:5])
    for prediction, row in zip(many, expected):
        assert prediction.calibrated
        np.testing.assert_allclose(list(prediction.calibrated_probs.values()), row, atol=1e-5)
        assert prediction.decision == ("automate" if row.max() >= 0.6 else "review")
    one = calibrated.classify(texts[0])
    np.testing.assert_allclose(list(one.calibrated_probs.values()), expected[0], atol=1e-5)
    with pytest.raises(ConfigError, match="hidden states"):
        decide(scores.probs, labels=clf.labels, calibrator=probe)
    # a plain calibrator written over it removes the probe: one calibrator per bundle
    write_bundle(tmp_path, model=ModelIdentity.of(tiny_backend), task=clf.task, chat=clf.chat, calibrator=None,
                 policy=POLICY, fitted_on={"rows_sha256": "x", "n_rows": 1})
    assert not (tmp_path / PROBE_FILE).exists() and read_bundle(tmp_path).calibrator is None


def test_evaluate_with_probe_measures_it_beside_the_calibrators(tiny_model_dir, tmp_path):
    clf = Classifier(model=str(tiny_model_dir), dtype="float32")
    splits = split_dataset(generate_sentiment(400, seed=5), seed=5)
    test = stratified_sample(splits.test, 40, seed=5)
    # no other calibrator competes, so the probe ships: the bundle, its reference and its decisions use it
    config = EvaluationConfig(methods=(), budget_sizes=(30,), budget_repeats=1, n_resamples=30)
    result = run_evaluate(clf, splits.calibration, test, tmp_path, config=config, progress=False, probe=True)
    probe = result.evaluation.methods["probe"]
    assert result.evaluation.best == "probe"
    assert probe.crossfit_probs.shape == (len(splits.calibration), 2)
    bundle = read_bundle(tmp_path)
    assert isinstance(bundle.calibrator, HiddenStateProbe)
    test_scores = clf.score(test.texts, hidden=True)
    np.testing.assert_allclose(bundle.calibrator.predict_proba(test_scores.hidden), probe.test_probs, atol=1e-5)
    applied = CalibratedClassifier(clf, bundle=tmp_path).predict_proba(list(test.texts[:5]))
    np.testing.assert_allclose(applied, probe.test_probs[:5], atol=1e-5)


@pytest.mark.model
def test_real_model_probe_round_trip(tmp_path):
    clf = Classifier(model="gemma-3-270m", dtype="float32")
    texts = ["I loved every minute of it.", "A wonderful, moving film.", "Great acting and a clever plot.",
             "Best meal I have had in years.", "Delightful from start to finish.", "I would happily watch it again.",
             "Dull, slow and far too long.", "The worst service I have ever had.", "A boring, lifeless script.",
             "I want my money back.", "Awful: the plot makes no sense.", "I regret buying this."]
    y = np.array([1] * 6 + [0] * 6)
    scores = clf.score(texts, hidden=True)
    assert scores.hidden.shape == (12, clf.backend.model.config.hidden_size)
    probe = HiddenStateProbe(n_splits=2).fit(scores.hidden, y, n_classes=2)
    write_bundle(tmp_path, model=ModelIdentity.of(clf.backend), task=clf.task, chat=clf.chat, calibrator=probe,
                 policy=POLICY, fitted_on={"rows_sha256": "x", "n_rows": 12})
    calibrated = CalibratedClassifier(clf, bundle=tmp_path)
    probs = calibrated.predict_proba(texts[:3])
    np.testing.assert_allclose(probs, probe.predict_proba(scores.hidden[:3]), atol=1e-5)
    assert calibrated.classify(texts[0]).calibrated


def test_a_probe_fitted_with_an_adapter_holds_only_for_that_adapter(tiny_model_dir, tmp_path):
    from confidently.backends.transformers_backend import TransformersBackend
    from confidently.errors import BundleMismatchError
    from test_adapters import make_adapter

    backend = TransformersBackend(str(tiny_model_dir), dtype="float32")
    backend.load_adapter(make_adapter(tiny_model_dir, tmp_path / "lora", seed=1), "lora")
    clf = Classifier(backend=backend)
    texts, y = labelled(40)
    adapted = clf.score(texts, hidden=True)
    backend.set_adapter(None)
    bare = clf.score(texts, hidden=True)
    assert not np.allclose(adapted.hidden, bare.hidden)  # the states are the adapted model's
    backend.set_adapter("lora")
    probe = HiddenStateProbe().fit(adapted.hidden, y, n_classes=2)
    write_bundle(tmp_path / "run", model=ModelIdentity.of(backend), task=clf.task, chat=clf.chat, calibrator=probe,
                 policy=POLICY, fitted_on={"rows_sha256": "x", "n_rows": 40})
    calibrated = CalibratedClassifier(clf, bundle=tmp_path / "run")
    np.testing.assert_allclose(calibrated.predict_proba(texts[:4]), probe.predict_proba(adapted.hidden[:4]), atol=1e-5)
    backend.set_adapter(None)
    with pytest.raises(BundleMismatchError):
        CalibratedClassifier(clf, bundle=tmp_path / "run")
