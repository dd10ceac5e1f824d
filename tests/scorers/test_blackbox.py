"""The black-box scorers on the tiny in-process model: reproducible sampling, every answer accounted
for, the score cache, and the scorer recorded in (and checked against) the calibration bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from confidently.bundle.bundle import read_bundle
from confidently.scoring.classifier import Classifier
from confidently.cli.app import app
from confidently.data import Dataset
from confidently.decision.calibrated import CalibratedClassifier
from confidently.errors import BundleMismatchError, ConfigError
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate
from confidently.scorers import ScorerSpec
from confidently.scoring.checkpointed import ScoreStore, score_with_store
from confidently.tasks.shots import shot_classifier
from confidently.types import ANSWER_OUTCOMES

TEXTS = ["the movie was great", "I hate it", "awful and boring", "a wonderful film, I love it"]
CONSISTENCY = ScorerSpec.make("consistency", samples=3, seed=5)


def scorer(tiny_backend, spec, **options) -> Classifier:
    return Classifier(backend=tiny_backend, scorer=spec, **options)


def test_consistency_is_reproducible_whatever_the_batch_or_order(tiny_backend):
    scores = scorer(tiny_backend, CONSISTENCY, batch_size=4).score(TEXTS)
    alone = scorer(tiny_backend, CONSISTENCY, batch_size=1).score(TEXTS[::-1])
    np.testing.assert_array_equal(alone.mass, scores.mass[::-1])
    np.testing.assert_array_equal(alone.answers.tokens, scores.answers.tokens[::-1])
    other_seeds = [scorer(tiny_backend, ScorerSpec.make("consistency", samples=3, seed=s)).score(TEXTS)
                   for s in (6, 7)]
    assert any(not np.array_equal(o.answers.tokens, scores.answers.tokens) or not np.array_equal(o.mass, scores.mass)
               for o in other_seeds)
    # Each row's answers are shares of its 3 samples: votes plus unusable answers make the whole.
    np.testing.assert_allclose(scores.mass.sum(1) + scores.other_mass, 1.0)
    np.testing.assert_allclose(scores.other_mass, scores.answers.unusable / 3)
    assert (scores.answers.calls == 3).all() and (scores.answers.tokens >= 3).all()
    assert (scores.answers.tokens <= 3 * CONSISTENCY.max_new_tokens).all()


def test_local_generation_reads_each_prompt_once_and_decodes_like_greedy_search(tiny_backend):
    """The K answers of a text share one read of its prompt (after the cached prefix); greedy answers are
    the tokens transformers' own greedy search gives for the whole prompt."""
    import torch
    from transformers import GenerationConfig

    clf = scorer(tiny_backend, CONSISTENCY)
    prompts = [clf.prompt(t) for t in TEXTS]
    tiny_backend.next_token_logprobs(prompts[:1], shared_prefix=clf.prefix)  # the prefix's KV is cached now
    shapes = []
    hook = tiny_backend.model.get_input_embeddings().register_forward_hook(
        lambda module, args, out: shapes.append(tuple(args[0].shape)))
    try:
        sampled = tiny_backend.generate(prompts, samples=3, max_new_tokens=5, temperature=1.0, seed=1,
                                        shared_prefix=clf.prefix)
    finally:
        hook.remove()
    assert shapes[0][0] == len(TEXTS)  # one row per text, not per answer
    rows = [shape[0] for shape in shapes[1:]]  # then one token per answer still going: ended ones leave
    assert all(shape[1] == 1 for shape in shapes[1:]) and rows == sorted(rows, reverse=True) and len(rows) <= 4
    assert rows[0] == 3 * len(TEXTS) and [len(answers) for answers in sampled] == [3] * len(TEXTS)
    # An answer may end once its vote is settled (its label word whole): the same votes, fewer tokens.
    reader = clf._black_box.reader
    settled = tiny_backend.generate(prompts, samples=3, max_new_tokens=5, temperature=1.0, seed=1,
                                    shared_prefix=clf.prefix, settled=reader.settled)
    for full, short in zip(sampled, settled):
        assert [reader.vote(a.text) for a in full] == [reader.vote(a.text) for a in short]
        assert all(s.tokens <= f.tokens and f.text.startswith(s.text.rstrip()) for f, s in zip(full, short))
    assert sum(a.tokens for answers in settled for a in answers) < sum(a.tokens for answers in sampled for a in answers)

    greedy = tiny_backend.generate(prompts, samples=1, max_new_tokens=6, temperature=0, seed=0,
                                   shared_prefix=clf.prefix)
    stops = sorted(tiny_backend._stop_ids())
    config = GenerationConfig(do_sample=False, max_new_tokens=6, eos_token_id=stops, pad_token_id=tiny_backend.pad_id)
    for prompt, (answer,) in zip(prompts, greedy):
        ids = torch.tensor([tiny_backend.encode_prompt(prompt)])
        out = tiny_backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        expected = out[0, ids.shape[1]:].tolist()
        ended = bool(expected) and expected[-1] in stops
        assert answer.tokens == len(expected)
        assert answer.text == tiny_backend.tokenizer.decode(expected[:-1] if ended else expected,
                                                             skip_special_tokens=True)


def test_verbalized_answers_are_all_accounted_for(tiny_backend):
    clf = scorer(tiny_backend, ScorerSpec.make("verbalized", max_new_tokens=6))
    scores = clf.score(TEXTS)
    assert "that your answer is correct" in clf.prompt(TEXTS[0])
    assert set(scores.answers.outcome) <= set(ANSWER_OUTCOMES) and len(scores.answers.outcome) == 4
    unusable = scores.answers.outcome != "ok"
    np.testing.assert_allclose(scores.probs[unusable], 0.5)  # no information: uniform, confidence 1/k
    frame = scores.to_frame()
    assert list(frame["answer_outcome"]) == list(scores.answers.outcome)
    prediction = CalibratedClassifier(clf).classify(TEXTS[0])
    assert prediction.variants == {} and prediction.top_tokens == []


def test_the_score_cache_keeps_answers_and_is_per_scorer(tiny_backend, tmp_path):
    clf = scorer(tiny_backend, CONSISTENCY)
    store = ScoreStore(tmp_path / "cache", clf.fingerprint(), clf.labels)
    first = score_with_store(clf, TEXTS[:2], store, progress=False)
    both = score_with_store(clf, TEXTS, ScoreStore(tmp_path / "cache", clf.fingerprint(), clf.labels),
                            progress=False)
    np.testing.assert_array_equal(both.mass[:2], first.mass)
    np.testing.assert_array_equal(both.answers.outcome[:2], first.answers.outcome)
    assert clf.fingerprint() != Classifier(backend=tiny_backend).fingerprint()
    assert clf.fingerprint() != scorer(tiny_backend, ScorerSpec.make("consistency", samples=4, seed=5)).fingerprint()


def test_a_black_box_scorer_refuses_hidden_states_and_the_probe(tiny_backend, tmp_path):
    clf = scorer(tiny_backend, CONSISTENCY)
    with pytest.raises(ConfigError, match="consistency scorer generates answers"):
        clf.score(TEXTS, hidden=True)
    with pytest.raises(ConfigError, match="consistency scorer generates answers"):
        clf.explain(TEXTS[0], hidden=True)
    data = Dataset(TEXTS * 3, ["positive", "negative", "negative", "positive"] * 3)
    with pytest.raises(ConfigError, match="--probe .* consistency scorer"):
        run_evaluate(clf, data, data, tmp_path / "run", progress=False, probe=True)
    assert not (tmp_path / "run" / "score-cache").exists()  # refused before any scoring


def test_few_shot_prompts_keep_the_scorer(tiny_backend):
    data = Dataset(TEXTS * 3, ["positive", "negative", "negative", "positive"] * 3)
    shot_clf, rest, _ = shot_classifier(scorer(tiny_backend, CONSISTENCY), data, 2, seed=0)
    assert shot_clf.scorer == CONSISTENCY and len(rest) == len(data) - 2
    assert shot_clf.score(rest.texts[:2]).answers is not None


def test_a_black_box_scorer_is_never_scored_in_a_shared_forward_pass(tiny_backend):
    from confidently.scoring.adapter_batches import AdapterGroup, score_groups

    clf = scorer(tiny_backend, ScorerSpec.make("verbalized"))
    assert clf.prompts(TEXTS[:1])[0] == [clf.prompt(TEXTS[0])]  # the question it generates for, not the logprob one
    with pytest.raises(ConfigError, match="black-box scorer"):
        score_groups([AdapterGroup(Classifier(backend=tiny_backend), None, TEXTS), AdapterGroup(clf, None, TEXTS)])


@pytest.fixture(scope="module")
def consistency_bundle(tiny_backend, tmp_path_factory):
    rng = np.random.default_rng(0)
    words = ["great", "love", "wonderful", "terrible", "awful", "boring", "film"]
    texts = [" ".join(rng.choice(words, 3)) + f" {i}" for i in range(24)]
    labels = ["positive" if i % 2 else "negative" for i in range(24)]
    calibration, test = Dataset(texts[:12], labels[:12]), Dataset(texts[12:], labels[12:])
    folder = tmp_path_factory.mktemp("consistency-run")
    config = EvaluationConfig(methods=("platt",), budget_repeats=1, n_resamples=50)
    result = run_evaluate(scorer(tiny_backend, CONSISTENCY), calibration, test, folder, config=config,
                          progress=False)
    return folder, result


def test_evaluate_records_the_scorer_and_its_answers(consistency_bundle):
    folder, result = consistency_bundle
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["scorer"] == CONSISTENCY.to_dict()
    assert result.scores["test"].answers.summary()["n"] == 12
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["metadata"]["scorer"] == CONSISTENCY.describe()
    assert "generations" in metrics["metadata"]["answers (test split)"]
    assert "contextual" not in result.evaluation.methods  # content-free inputs are a logprob idea


def test_a_bundle_applies_only_with_its_scorer(consistency_bundle, tiny_backend, tmp_path):
    folder, _ = consistency_bundle
    with pytest.raises(BundleMismatchError, match="scores of the consistency .* scorer but is applied to scores of "
                                                  "the logprob"):
        CalibratedClassifier(Classifier(backend=tiny_backend), bundle=folder)
    with pytest.raises(BundleMismatchError):
        CalibratedClassifier(scorer(tiny_backend, ScorerSpec.make("consistency", samples=4, seed=5)), bundle=folder)
    # Another seed redraws from the same distribution: accepted.
    CalibratedClassifier(scorer(tiny_backend, ScorerSpec.make("consistency", samples=3, seed=9)), bundle=folder)
    loaded = CalibratedClassifier.load(folder, model=str(tiny_backend.source.path), dtype="float32")
    assert loaded.classifier.scorer == CONSISTENCY
    assert read_bundle(folder).scorer == CONSISTENCY


def test_bundles_written_before_scorers_are_logprob(tiny_backend, tmp_path):
    from test_bundle import make_bundle

    make_bundle(tmp_path / "old", Classifier(backend=tiny_backend))
    manifest = json.loads((tmp_path / "old" / "manifest.json").read_text())
    del manifest["scorer"]
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(manifest))
    assert read_bundle(tmp_path / "old").scorer == ScorerSpec()
    with pytest.raises(BundleMismatchError):
        CalibratedClassifier(scorer(tiny_backend, CONSISTENCY), bundle=tmp_path / "old")


def test_sampling_options_without_a_sampling_scorer_are_a_usage_error(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a", "label": "positive"}\n')
    def said(result) -> str:  # the error box's text on one line
        return " ".join(result.output.replace("│", " ").split())

    result = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--samples", "3"])
    assert result.exit_code == 2 and "apply to the verbalized and consistency scorers only" in said(result)
    result = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--scorer", "consistency",
                                      "--temperature", "0", "--samples", "4"])
    assert result.exit_code == 2 and "greedy decoding" in said(result)
