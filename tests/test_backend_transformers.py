"""The local backend on a tiny random model: exact masses, batch/prefix invariance, prompts."""

import numpy as np
import pytest
import torch

from confidently.scoring.classifier import Classifier
from confidently.errors import DataError, TaskError, UnknownModelError
from confidently.models.registry import resolve_model
from confidently.tasks.task import SENTIMENT, Label, Task
from sequence_chain import NO_OPINION, expected_opinion_masses

TEXTS = ["the movie was great", "I hate it", "a wonderful film and I love it", "awful",
         "boring film, terrible and bad, I hate it so much", "yes", "maybe it was fine"]


def test_class_mass_is_the_exact_softmax_sum(tiny_backend):
    prompt = tiny_backend.format_prompt(SENTIMENT.message("great film"))
    ids = torch.tensor([tiny_backend.encode(prompt)])
    with torch.no_grad():
        probs = torch.softmax(tiny_backend.model(input_ids=ids).logits[0, -1].double(), -1).numpy()
    verbalizer = tiny_backend.verbalizer(SENTIMENT)
    mass, other, uncovered = tiny_backend.score_prompts([prompt], verbalizer)
    vocab = tiny_backend.vocabulary()
    expected = [sum(probs[i] for i, t in enumerate(vocab) if t.strip().casefold() in words)
                for words in ({"no", "n", "false", "negative"}, {"yes", "y", "true", "positive"})]
    np.testing.assert_allclose(mass[0], expected, atol=1e-6)
    assert other[0] == pytest.approx(1 - sum(expected), abs=1e-6)
    assert uncovered is None


def test_batched_single_and_prefix_cached_agree(tiny_backend):
    clf = Classifier(backend=tiny_backend, task="sentiment", batch_size=4)
    batched = clf.score(TEXTS).probs
    single = np.concatenate([Classifier(backend=tiny_backend, batch_size=1).score([t]).probs for t in TEXTS])
    prompts = [clf.prompt(t) for t in TEXTS]
    no_prefix = np.concatenate([
        clf.verbalizer.class_mass(tiny_backend.next_token_logprobs([p])) for p in prompts])
    no_prefix = no_prefix / no_prefix.sum(1, keepdims=True)
    np.testing.assert_allclose(batched, single, atol=1e-4)
    np.testing.assert_allclose(batched, no_prefix, atol=1e-4)
    assert np.abs(batched - batched.mean(0)).max() > 1e-3  # the texts really differ


def test_prefix_cache_is_used(tiny_backend):
    clf = Classifier(backend=tiny_backend, task="sentiment")
    ids, prefix = tiny_backend._split([clf.prompt(t) for t in TEXTS], clf.prefix)
    assert len(prefix) > 5 and all(len(r) < 40 for r in ids)


def test_results_come_back_in_input_order(tiny_backend):
    clf = Classifier(backend=tiny_backend, batch_size=3)
    forward = clf.score(TEXTS).probs
    backward = clf.score(TEXTS[::-1]).probs[::-1]
    np.testing.assert_allclose(forward, backward, atol=1e-5)


def test_chat_template_and_plain_suffix(tiny_backend):
    chat = tiny_backend.format_prompt("hello")
    assert chat.startswith("<|im_start|>user\nhello") and chat.endswith("<|im_start|>assistant\n")
    assert tiny_backend.format_prompt("hello", chat=False) == "hello\nAnswer:"
    prefix, suffix = tiny_backend.prompt_parts(SENTIMENT, chat=False)
    assert prefix.startswith("Is this text positive") and suffix == '"\nAnswer:'


def test_multiclass_and_multi_token_labels(tiny_backend):
    # "splendid" is not one token in the tiny vocabulary: scored as the exact sequence probability.
    task = Task("three", "Rate: {text}", (Label("bad", ("no",)), Label("meh", ("maybe",)),
                                          Label("good", ("splendid",))), multi_token=True)
    clf = Classifier(backend=tiny_backend, task=task)
    scores = clf.score(["great film", "awful"])
    assert scores.mass.shape == (2, 3) and np.all(scores.mass > 0)
    # Check the sequence mass by chaining single-token probabilities by hand.
    prompt = clf.prompt("great film")
    seqs = clf.verbalizer.labels[2].sequences
    assert seqs and all(len(s) > 1 for s in seqs)
    total = 0.0
    for seq in seqs:
        ids = tiny_backend.encode(prompt)
        logp = 0.0
        for token in seq:
            with torch.no_grad():
                logits = tiny_backend.model(input_ids=torch.tensor([ids])).logits[0, -1]
            logp += torch.log_softmax(logits.double(), -1)[token].item()
            ids.append(token)
        total += np.exp(logp)
    assert scores.mass[0, 2] == pytest.approx(total, rel=1e-4)
    with pytest.raises(TaskError, match="splendid"):
        Classifier(backend=tiny_backend, task=Task("t", "{text}", task.labels))


def test_long_text_is_truncated_and_flagged(tiny_backend):
    clf = Classifier(backend=tiny_backend, max_text_tokens=12)
    long_text = "the movie was great and I love it " * 20
    scores = clf.score([long_text, "short"])
    assert scores.truncated.tolist() == [True, False]
    kept = clf.prompt(long_text)
    assert "…" in kept and len(tiny_backend.encode(kept)) < len(tiny_backend.encode(clf.prefix + long_text))
    left = Classifier(backend=tiny_backend, max_text_tokens=12, truncation="left").prompt(long_text)
    assert left.endswith('love it "' + clf.suffix[1:]) or "…" not in left


def test_empty_text_is_refused(tiny_backend):
    with pytest.raises(DataError, match="text 1 is empty"):
        Classifier(backend=tiny_backend).score(["fine", "  "])


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match="qwen2.5-coder-0.5b-instruct"):
        resolve_model("no-such-model")


def test_next_token_table_sums_to_at_most_one(tiny_backend):
    clf = Classifier(backend=tiny_backend)
    table = clf.next_token("Knock knock.", top_k=12)
    assert [t.rank for t in table] == list(range(1, 13))
    assert sum(t.prob for t in table) <= 1 + 1e-6
    assert all(a.logprob >= b.logprob for a, b in zip(table, table[1:]))


def test_multi_token_labels_that_extend_another_label_get_their_exact_mass(tiny_backend):
    clf = Classifier(backend=tiny_backend, task=NO_OPINION, batch_size=2)
    # In the tiny vocabulary " no" is one token and both longer answers start with it.
    assert any(seq[0] in set(clf.verbalizer.labels[0].token_ids.tolist()) for seq in clf.verbalizer.sequences)
    texts = ["the movie was great", "I hate it", "maybe it was fine"]
    scores = clf.score(texts)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(scores.mass[i], expected_opinion_masses(tiny_backend, clf.prompt(text)),
                                   rtol=1e-4, atol=1e-9)
    assert np.all(scores.mass[:, 1:] > 0) and np.all(scores.mass.sum(axis=1) <= 1 + 1e-9)
