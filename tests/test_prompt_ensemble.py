"""Prompt ensembles: the prompts file checked at the boundary, every prompt scored, the combiner cross-fitted,
shipped in the bundle and applied wherever the bundle is (same mechanism as the hidden-state probe)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from confidently.bundle.bundle import PROBE_FILE, ModelIdentity, read_bundle, write_bundle
from confidently.decision.calibrated import CalibratedClassifier
from confidently.calibration.ensemble import PromptCombiner
from confidently.scoring.classifier import Classifier
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.errors import BundleMismatchError, ConfigError, TaskError
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import content_free_scores, run_evaluate
from confidently.tasks.task import SENTIMENT, Task, read_prompts
from confidently.decision.policy import DecisionPolicy

POLICY = DecisionPolicy(0.6, 0.9, True, "ltt", 0.95)
# Label words the tiny test vocabulary spells (the sentiment task's own).
PROMPTS = [
    {"template": "Review: {text}\nIs the review positive?", "words": {"negative": ["false"], "positive": ["true"]}},
    {"name": "plain", "template": "{text}\nSentiment, positive or negative?",
     "words": {"negative": ["negative"], "positive": ["positive"]}},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_prompts_file_adds_prompts_to_the_task(tmp_path):
    task = read_prompts(write_jsonl(tmp_path / "p.jsonl", PROMPTS + [{"template": "Text: {text}"}]), SENTIMENT)
    assert [p.name for p in task.ensemble] == ["sentiment-prompt1", "plain", "sentiment-prompt3"]
    assert task.ensemble[0].labels[1].words == ("true",) and task.ensemble[2].labels == SENTIMENT.labels
    assert task.prompts[0] == SENTIMENT and len(task.prompts) == 4
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(PROMPTS), encoding="utf-8")
    assert read_prompts(as_json, SENTIMENT).ensemble == task.ensemble[:2]
    # the ensemble travels with the task (bundle manifest, score-cache fingerprint); a single prompt's dict is unchanged
    assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    assert "ensemble" not in SENTIMENT.to_dict() and task.fingerprint() != SENTIMENT.fingerprint()


@pytest.mark.parametrize("name, content, expected", [
    ("bad.jsonl", '{"template": "a {text}"}\n{"template": \n', r"bad.jsonl:2: not valid JSON"),
    ("bad.jsonl", '\n{"words": {}}\n', r"bad.jsonl:2: .*words must map every label"),
    ("bad.jsonl", '{"template": "no slot"}\n', r"bad.jsonl:1: .*must contain \{text\} exactly once"),
    ("bad.jsonl", '{"template": "{text}", "labels": []}\n', r"bad.jsonl:1: unknown key\(s\) labels"),
    ("bad.jsonl", '["{text}"]\n', r"bad.jsonl:1: expected an object with a template; got list"),
    ("bad.jsonl", '{"template": "{text}", "words": {"negative": ["no"], "positive": []}}\n',
     r"bad.jsonl:1: .*'positive' has no words"),
    ("bad.jsonl", json.dumps({"template": SENTIMENT.template}) + "\n", r"bad.jsonl:1: .*repeats the task's own prompt"),
    ("bad.jsonl", '{"template": "a {text}"}\n{"template": "a {text}"}\n', r"bad.jsonl:2: .*repeats ensemble prompt 1"),
    ("bad.jsonl", "\n\n", r"bad.jsonl: holds no prompts"),
    ("bad.json", '{"template": "{text}"}', r"bad.json: expected a JSON list of prompts"),
    ("bad.json", '[{"template": "{text}"},\n 7]', r"bad.json: prompt 2: expected an object"),
    ("bad.json", '[\n{"template": "{text}"\n', r"bad.json:3: not valid JSON"),
])
def test_a_bad_prompts_file_is_one_line_naming_file_and_line(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskError, match=expected) as caught:
        read_prompts(path, SENTIMENT)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_ensemble_prompts_share_the_labels():
    other = Task("o", "{text}", SENTIMENT.labels[::-1])
    with pytest.raises(TaskError, match="expected the task's negative, positive"):
        Task("e", SENTIMENT.template, SENTIMENT.labels, ensemble=(other,))
    nested = Task("n", "x {text}", SENTIMENT.labels, ensemble=(Task("m", "y {text}", SENTIMENT.labels),))
    with pytest.raises(TaskError, match="without an ensemble of its own"):
        Task("e", SENTIMENT.template, SENTIMENT.labels, ensemble=(nested,))


@pytest.fixture(scope="module")
def ensemble_task(tmp_path_factory):
    return read_prompts(write_jsonl(tmp_path_factory.mktemp("prompts") / "p.jsonl", PROMPTS), SENTIMENT)


def test_every_prompt_is_scored_and_the_masses_kept_side_by_side(tiny_backend, ensemble_task):
    texts = ["I love it", "terrible film, I hate it", "the movie was great", "boring"]
    clf = Classifier(backend=tiny_backend, task=ensemble_task, batch_size=3)
    alone = [Classifier(backend=tiny_backend, task=prompt).score(texts) for prompt in ensemble_task.prompts]
    assert [c.task for c in clf.prompt_classifiers] == list(ensemble_task.prompts)
    assert not np.allclose(alone[0].mass, alone[1].mass)  # the prompts do ask differently
    scores = clf.score(texts, hidden=True)
    np.testing.assert_allclose(scores.mass, np.mean([s.mass for s in alone], axis=0), rtol=1e-5)
    np.testing.assert_allclose(scores.other_mass, np.mean([s.other_mass for s in alone], axis=0), rtol=1e-5)
    np.testing.assert_allclose(scores.hidden, np.hstack([s.mass for s in alone]), rtol=1e-5)
    assert clf.score(texts).hidden is None
    explained, variants, top = clf.explain(texts[1], hidden=True)
    np.testing.assert_allclose(explained.hidden, scores.hidden[1:2], rtol=1e-4)
    assert set(variants) == {"negative", "positive"} and top
    # contextual calibration sees the ensemble's raw scores too: the prompts' mean mass on content-free inputs
    assert not np.allclose(content_free_scores(clf), content_free_scores(clf.prompt_classifiers[0]))


def test_the_combiner_reads_log_masses_and_round_trips_through_the_bundle(tiny_backend, ensemble_task, tmp_path):
    clf = Classifier(backend=tiny_backend, task=ensemble_task)
    data = generate_sentiment(80, seed=3)
    texts, y = list(data.texts), np.array([0 if label == "negative" else 1 for label in data.labels])
    scores = clf.score(texts, hidden=True)
    combiner = PromptCombiner(classes=list(clf.labels)).fit(scores.hidden, y, n_classes=2)
    assert combiner.coef_.shape == (2, 6)
    bundle = write_bundle(tmp_path, model=ModelIdentity.of(tiny_backend), task=clf.task, chat=clf.chat,
                          calibrator=combiner, policy=POLICY, fitted_on={"rows_sha256": "x", "n_rows": len(texts)})
    assert PROBE_FILE in bundle.files and json.loads((tmp_path / PROBE_FILE).read_text())["method"] == "ensemble"
    loaded = read_bundle(tmp_path)
    assert isinstance(loaded.calibrator, PromptCombiner) and loaded.task == ensemble_task
    # the bundle's classifier scores every prompt: CalibratedClassifier.load rebuilds the ensemble from the task
    calibrated = CalibratedClassifier(Classifier(backend=tiny_backend, task=loaded.task), bundle=loaded)
    expected = combiner.predict_proba(scores.hidden[:5])
    np.testing.assert_allclose(calibrated.predict_proba(texts[:5]), expected, atol=1e-5)
    np.testing.assert_allclose(list(calibrated.classify(texts[0]).calibrated_probs.values()), expected[0], atol=1e-5)
    with pytest.raises(BundleMismatchError, match="fitted for task"):  # one prompt alone is another task
        CalibratedClassifier(Classifier(backend=tiny_backend), bundle=loaded)


def test_evaluate_with_prompts_ships_the_cross_fitted_combiner(tiny_model_dir, ensemble_task, tmp_path):
    clf = Classifier(model=str(tiny_model_dir), dtype="float32", task=ensemble_task)
    splits = split_dataset(generate_sentiment(400, seed=5), seed=5)
    test = stratified_sample(splits.test, 40, seed=5)
    # no other calibrator competes, so the combiner ships
    config = EvaluationConfig(methods=(), budget_sizes=(30,), budget_repeats=1, n_resamples=30)
    result = run_evaluate(clf, splits.calibration, test, tmp_path, config=config, progress=False)
    ensemble = result.evaluation.methods["ensemble"]
    assert result.evaluation.best == "ensemble"
    assert ensemble.crossfit_probs.shape == (len(splits.calibration), 2)
    assert result.scores["test"].hidden.shape == (len(test), 6)
    bundle = read_bundle(tmp_path)
    assert isinstance(bundle.calibrator, PromptCombiner) and bundle.task == ensemble_task
    cost = bundle.manifest["cost"]
    assert cost["forward_passes_per_item"] == 3
    assert 0 < cost["tokens_past_prefix_per_item"] < cost["prompt_tokens_per_item"]
    applied = CalibratedClassifier.load(tmp_path, model=str(tiny_model_dir), dtype="float32")
    np.testing.assert_allclose(applied.predict_proba(list(test.texts[:5])), ensemble.test_probs[:5], atol=1e-5)
    with pytest.raises(ConfigError, match="use one"):
        run_evaluate(clf, splits.calibration, test, tmp_path / "both", config=config, progress=False, probe=True)


def test_an_ensemble_is_never_scored_in_a_shared_forward_pass(tiny_backend, ensemble_task):
    from confidently.scoring.adapter_batches import AdapterGroup, score_groups

    with pytest.raises(ConfigError, match="prompt ensemble"):
        score_groups([AdapterGroup(Classifier(backend=tiny_backend, task=ensemble_task), None, ["good"]),
                      AdapterGroup(Classifier(backend=tiny_backend), None, ["bad"])])


def test_evaluate_checks_the_prompts_file_before_the_model_loads(tmp_path):
    executable = Path(sys.executable).with_name("confidently")
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "good", "label": "positive"}\n', encoding="utf-8")
    bad = write_jsonl(tmp_path / "prompts.jsonl", [{"template": "Text: {text}"}, {"template": "no slot"}])
    run = lambda *extra: subprocess.run(  # noqa: E731
        [str(executable), "evaluate", "--data", str(data), "--prompts", str(bad), "--model", "no-such-model",
         "--out", str(tmp_path / "run"), *extra], capture_output=True, text=True, timeout=120)
    result = run()
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"{bad}:2:" in result.stderr and "no-such-model" not in result.stderr and "Traceback" not in result.stderr
    both = run("--probe")
    assert both.returncode == 2 and "use one" in both.stderr and len(both.stderr.splitlines()) == 1


@pytest.mark.model
def test_real_model_prompt_ensemble(tmp_path):
    texts = ["I loved every minute of it.", "A wonderful, moving film.", "Great acting and a clever plot.",
             "Delightful from start to finish.", "Dull, slow and far too long.", "The worst service I have ever had.",
             "A boring, lifeless script.", "I regret buying this."]
    y = np.array([1] * 4 + [0] * 4)
    task = read_prompts(write_jsonl(tmp_path / "p.jsonl", [
        {"template": "Review: {text}\nIs this review positive?"},
        {"template": "{text}\nWas the writer pleased? Answer yes or no."}]), SENTIMENT)
    clf = Classifier(model="gemma-3-270m", dtype="float32", task=task, batch_size=4)
    scores = clf.score(texts, hidden=True)
    alone = [clf.asking(prompt).score(texts) for prompt in task.prompts]
    np.testing.assert_allclose(scores.hidden, np.hstack([s.mass for s in alone]), rtol=1e-4, atol=1e-7)
    combiner = PromptCombiner(n_splits=2).fit(scores.hidden, y, n_classes=2)
    write_bundle(tmp_path / "run", model=ModelIdentity.of(clf.backend), task=task, chat=clf.chat, calibrator=combiner,
                 policy=POLICY, fitted_on={"rows_sha256": "x", "n_rows": len(texts)})
    calibrated = CalibratedClassifier(clf, bundle=tmp_path / "run")
    np.testing.assert_allclose(calibrated.predict_proba(texts[:3]), combiner.predict_proba(scores.hidden[:3]),
                               atol=1e-5)
