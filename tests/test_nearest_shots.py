"""Few-shot examples nearest to each text: the pool comes from calibration rows only and is left out of
calibration, a text is never its own example, and a loaded bundle picks the same examples as evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from confidently.bundle.bundle import read_bundle
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.decision.calibrated import CalibratedClassifier
from confidently.errors import ArtifactError, DataError, TaskError
from confidently.scoring.classifier import Classifier
from confidently.tasks.nearest import NEAREST_FILE, NearestShots, choose_pool, default_pool_size
from confidently.tasks.nearest import nearest_shot_classifier
from confidently.tasks.shots import shot_classifier
from confidently.tasks.task import SENTIMENT, Task
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate

POOL = ["the acting was wonderful and moving", "a wonderful cast in a moving story", "great fun, I loved it",
        "boring and far too long", "the plot was dull and the acting wooden", "I hated every dull minute",
        "the soundtrack was lovely", "a tedious, lifeless script"]
POOL_Y = [1, 1, 1, 0, 0, 0, 1, 0]
CONFIG = EvaluationConfig(methods=("platt",), budget_sizes=(), budget_repeats=1, n_resamples=30)


def test_the_pool_is_seeded_skips_slot_markers_and_leaves_rows_of_each_class():
    y = np.array([0, 1] * 50)
    texts = [f"text {i}" for i in range(99)] + ["holds {text}"]
    pool = choose_pool(y, 4, n_classes=2, seed=3, texts=texts)
    assert len(pool.indices) == default_pool_size(100, 4) == 25 and 99 not in pool.indices
    assert set(pool.indices).isdisjoint(pool.rest) and len(pool.indices) + len(pool.rest) == 100
    assert choose_pool(y, 4, n_classes=2, seed=3, texts=texts) == pool != choose_pool(y, 4, n_classes=2, seed=4)
    assert default_pool_size(40, 8) == 32 and default_pool_size(100_000, 4) == 256


@pytest.mark.parametrize("labels, k, size, expected", [
    ([0, 1] * 10, 4, 4, "must be more than --shots 4"),
    ([0, 1] * 10, 4, 21, "at most the 20 usable"),
    ([0] * 18 + [1] * 2, 4, 10, "leave two rows of each class"),
])
def test_a_pool_that_cannot_work_is_one_clear_line(labels, k, size, expected):
    with pytest.raises(DataError, match=expected) as error:
        choose_pool(np.array(labels), k, n_classes=2, size=size, seed=0)
    assert "\n" not in str(error.value)


def test_examples_are_the_nearest_pool_rows_balanced_most_similar_last_never_the_text_itself():
    shots = NearestShots(POOL, POOL_Y, 2, balanced=True, n_classes=2)
    examples = shots.examples("the acting was wonderful")
    assert [label for _, label in examples] == [0, 1]  # one of each class, even though both nearest are positive
    assert examples[-1][0] == "the acting was wonderful and moving"
    assert examples[0][0] == "the plot was dull and the acting wooden"  # the nearest negative
    unbalanced = NearestShots(POOL, POOL_Y, 2, balanced=False, n_classes=2)
    assert [t for t, _ in unbalanced.examples("a wonderful and moving film")] == [  # shares the bigrams: last
        "a wonderful cast in a moving story", "the acting was wonderful and moving"]
    for text in POOL:  # a pool row asked about is never its own example
        assert text not in [t for t, _ in shots.examples(f"  {text} ")]
        assert len(shots.examples(text)) == 2
    assert len(shots.examples("zzz qqq")) == 2  # no shared word: still k examples, the earliest rows
    with pytest.raises(DataError, match="need a pool of more than 8"):
        NearestShots(POOL, POOL_Y, 8, balanced=True, n_classes=2)


def test_the_saved_index_is_json_and_picks_the_same_examples():
    shots = NearestShots(POOL, POOL_Y, 3, balanced=True, n_classes=2)
    saved = json.loads(json.dumps(shots.to_dict(SENTIMENT.label_names)))
    assert saved["labels"][:2] == ["positive", "positive"] and len(saved["vocabulary"]) == len(saved["idf"])
    loaded = NearestShots.from_dict(saved, SENTIMENT.label_names)
    queries = ["wonderful acting", "dull script", "I loved the soundtrack", "nothing in common", *POOL]
    assert [loaded.examples(q) for q in queries] == [shots.examples(q) for q in queries]
    assert (abs(loaded.index.vectors(queries) - shots.index.vectors(queries))).max() < 1e-12
    for broken, expected in (({**saved, "idf": saved["idf"][:-1]}, "equal length"),
                             ({**saved, "labels": ["happy"] * len(POOL)}, "labels among"),
                             ({**saved, "k": 8}, "pool of more than 8")):
        with pytest.raises(ArtifactError, match=expected):
            NearestShots.from_dict(broken, SENTIMENT.label_names)


def test_a_task_with_nearest_shots_records_the_pool_hash_and_needs_the_pool(tiny_backend):
    shots = NearestShots(POOL, POOL_Y, 2, balanced=True, n_classes=2)
    task = replace(SENTIMENT, nearest=shots)
    record = task.to_dict()
    assert record["nearest"]["pool_rows"] == 8 and len(record["nearest"]["sha256"]) == 64
    assert SENTIMENT.to_dict().keys() == {k for k in record if k != "nearest"}  # plain tasks keep their fingerprint
    with pytest.raises(TaskError, match="no pool was given"):
        Task.from_dict(record)
    other = NearestShots(POOL[:-1], POOL_Y[:-1], 2, balanced=True, n_classes=2)
    with pytest.raises(TaskError, match="not the one the task records"):
        Task.from_dict(record, nearest=other)
    assert Task.from_dict(record, nearest=shots).to_dict() == record
    clf = Classifier(backend=tiny_backend, task=task)
    prompt = clf.prompt("the acting was wonderful")
    assert prompt.startswith(clf.prefix) and clf.prefix.endswith("Examples:\n\n")
    assert 'Text: "the plot was dull and the acting wooden"\nAnswer: no' in prompt
    assert prompt.index("wonderful and moving") < prompt.index("Now this one.") < prompt.index('"the acting was wonderful"')
    batch = clf.score(["the acting was wonderful", "dull script", "great fun"])
    alone = np.vstack([clf.score([t]).probs for t in ["the acting was wonderful", "dull script", "great fun"]])
    np.testing.assert_allclose(alone, batch.probs, atol=1e-5)  # per-text prompts batch like any other


def test_evaluate_sets_the_pool_aside_and_the_loaded_bundle_asks_the_same_prompts(tiny_model_dir, tmp_path,
                                                                                  cli_with_bundle):
    clf = Classifier(model=str(tiny_model_dir), dtype="float32")
    splits = split_dataset(generate_sentiment(400, seed=5), seed=5)
    calibration, test = splits.calibration, stratified_sample(splits.test, 30, seed=5)
    asked, rest, pool = nearest_shot_classifier(clf, calibration, 2, pool_size=12, seed=CONFIG.seed)
    pooled = {calibration.texts[i] for i in pool.indices}
    assert pooled.isdisjoint(test.texts) and pooled.isdisjoint(rest.texts) and len(pooled) == 12
    result = run_evaluate(clf, calibration, test, tmp_path, config=CONFIG, progress=False, shots=2,
                          shot_selection="nearest", shot_pool=12)
    assert result.evaluation.y_calibration.size == len(calibration) - 12
    bundle = read_bundle(tmp_path)
    record = bundle.manifest["shots"]
    assert record["selection"] == "nearest" and record["calibration_rows"] == list(pool.indices)
    assert bundle.fitted_on["n_rows"] == len(rest) and NEAREST_FILE in bundle.files
    assert set(bundle.task.nearest.texts) == pooled
    cost = bundle.manifest["cost"]  # the examples are paid per text: little of the prompt is a shared prefix
    assert cost["tokens_past_prefix_per_item"] > 0.8 * cost["prompt_tokens_per_item"]
    scored = pd.read_parquet(tmp_path / "scores.parquet")
    assert pooled.isdisjoint(scored["text"])  # the pool is neither calibrated on nor measured
    loaded = CalibratedClassifier.load(tmp_path, dtype="float32")
    assert [loaded.classifier.prompt(t) for t in test.texts] == [asked.prompt(t) for t in test.texts]
    on_test = scored[scored["split"] == "test"]
    reply, frame = cli_with_bundle(tmp_path, list(on_test["text"][:3]))
    np.testing.assert_allclose(frame["raw_p_positive"], on_test["raw_p_positive"][:3], atol=1e-5)
    assert reply["raw_probs"]["positive"] == pytest.approx(on_test["raw_p_positive"].iloc[0], abs=1e-5)


def test_balanced_shots_still_record_their_rows(tiny_model_dir, tmp_path):
    clf = Classifier(model=str(tiny_model_dir), dtype="float32")
    splits = split_dataset(generate_sentiment(300, seed=2), seed=2)
    test = stratified_sample(splits.test, 20, seed=2)
    _, rest, shots = shot_classifier(clf, splits.calibration, 2, seed=CONFIG.seed)
    run_evaluate(clf, splits.calibration, test, tmp_path, config=CONFIG, progress=False, shots=2)
    bundle = read_bundle(tmp_path)
    assert bundle.manifest["shots"]["selection"] == "balanced" and bundle.task.nearest is None
    assert bundle.manifest["shots"]["calibration_rows"] == list(shots.indices) and NEAREST_FILE not in bundle.files
    cost = bundle.manifest["cost"]  # the shared examples are in the cached prefix
    assert cost["tokens_past_prefix_per_item"] < 0.5 * cost["prompt_tokens_per_item"]


def test_bad_shot_options_are_one_line_before_the_model_loads(tmp_path):
    executable = Path(sys.executable).with_name("confidently")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": f"text {i}", "label": ["negative", "positive"][i % 2]}) + "\n"
                            for i in range(40)), encoding="utf-8")
    def run(*extra):
        return subprocess.run([str(executable), "evaluate", "--data", str(data), "--model", "no-such-model",
                               "--out", str(tmp_path / "run"), *extra], capture_output=True, text=True, timeout=120)
    for extra, expected in ((["--shot-selection", "nearest"], "need --shots K"),
                            (["--shots", "4", "--shot-pool", "10"], "add --shot-selection nearest"),
                            (["--shots", "4", "--shot-selection", "nearest", "--shot-pool", "4"], "more rows than"),
                            (["--shots", "2", "--shot-selection", "nearest", "--scorer", "verbalized"],
                             "logprob scorer")):
        result = run(*extra)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1 and "no-such-model" not in result.stderr


@pytest.mark.model
def test_real_model_nearest_shots_through_evaluate_bundle_and_classify(gemma_classifier, tmp_path):
    splits = split_dataset(generate_sentiment(300, seed=11), seed=11)
    calibration = stratified_sample(splits.calibration, 30, seed=11)
    test = stratified_sample(splits.test, 6, seed=11)
    result = run_evaluate(gemma_classifier, calibration, test, tmp_path, config=CONFIG, progress=False, shots=2,
                          shot_selection="nearest", shot_pool=8)
    bundle = read_bundle(tmp_path)
    assert result.evaluation.y_calibration.size == 22 and len(bundle.task.nearest.texts) == 8
    assert set(bundle.task.nearest.texts).isdisjoint(test.texts)
    scored = pd.read_parquet(tmp_path / "scores.parquet")
    on_test = scored[scored["split"] == "test"]
    loaded = CalibratedClassifier.load(tmp_path, dtype="float32")
    for text, raw in zip(on_test["text"][:2], on_test["raw_p_positive"][:2]):
        prediction = loaded.classify(text, top_k=0)
        assert prediction.raw_probs["positive"] == pytest.approx(raw, abs=1e-4)
        assert prediction.decision in ("automate", "review")
    zero = gemma_classifier.score(list(on_test["text"])).probs[:, 1]
    assert not np.allclose(zero, on_test["raw_p_positive"], atol=1e-3)  # the examples change the answer
