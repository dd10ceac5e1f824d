"""The same paths as the tiny-model tests, on the real default model (qwen2.5-coder-0.5b-instruct)."""

import numpy as np
import pytest

from confidently.scoring.classifier import Classifier

pytestmark = pytest.mark.model

SENTENCES = [
    "I absolutely loved this film, it was wonderful from start to finish.",
    "This was the worst meal I have ever had; the service was rude and slow.",
    "The acting was superb and the story moved me to tears.",
    "A boring, predictable mess that wasted two hours of my life.",
    "the plot is thin but the performances are charming .",
    "It arrived broken and customer support never answered.",
    "An okay product.",
    "Fantastic!",
    "I want my money back.",
]


def test_knock_knock_table(default_classifier):
    table = default_classifier.next_token("Knock knock.", top_k=12)
    assert len(table) == 12
    assert sum(t.prob for t in table) <= 1.0
    assert all(a.prob >= b.prob for a, b in zip(table, table[1:]))
    raw = default_classifier.next_token("Knock knock.", top_k=12, raw=True)
    assert [t.token for t in raw] != [t.token for t in table]  # the chat template changes the answer


def test_obvious_sentiment_ranks_correctly(default_classifier):
    probs = default_classifier.predict_proba(SENTENCES[:4])
    positive = probs[:, default_classifier.labels.index("positive")]
    assert positive[0] > positive[1] and positive[2] > positive[3]
    assert min(positive[0], positive[2]) > max(positive[1], positive[3])


def test_verbalizer_finds_case_and_space_variants(default_classifier):
    vocab = default_classifier.backend.vocabulary()
    positive = {vocab[i] for i in default_classifier.verbalizer.labels[1].token_ids}
    assert {"yes", "Yes", " yes", " Yes", "YES"} <= positive


def test_batch_single_and_prefix_cached_agree(default_classifier):
    backend = default_classifier.backend
    batched = Classifier(backend=backend, batch_size=8).score(SENTENCES)
    single = Classifier(backend=backend, batch_size=1).score(SENTENCES)
    prompts = [default_classifier.prompt(t) for t in SENTENCES]
    no_prefix = np.concatenate([default_classifier.verbalizer.class_mass(backend.next_token_logprobs([p]))
                                for p in prompts])
    np.testing.assert_allclose(batched.mass, single.mass, atol=1e-4)
    np.testing.assert_allclose(batched.mass, no_prefix, atol=1e-4)
    np.testing.assert_allclose(batched.probs, single.probs, atol=1e-4)


def test_classify_explains_the_prediction(default_classifier):
    result = default_classifier.classify("Fantastic!")
    # The raw model leans "no" (that bias is what calibration is for), so check consistency, not the label.
    assert result.label == max(result.mass, key=result.mass.get)
    assert result.confidence == pytest.approx(max(result.probs.values()))
    assert sum(result.mass.values()) + result.other_mass == pytest.approx(1.0, abs=1e-4)
    assert result.variants["positive"][0].prob <= result.mass["positive"] + 1e-9
    assert len(result.top_tokens) == 10


def test_multi_token_labels_that_extend_another_label_on_the_real_model(default_classifier):
    from sequence_chain import NO_OPINION, expected_opinion_masses

    clf = Classifier(backend=default_classifier.backend, task=NO_OPINION)
    texts = ["Pineapple belongs on pizza.", "The meeting should move to Friday."]
    scores = clf.score(texts)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(scores.mass[i], expected_opinion_masses(clf.backend, clf.prompt(text)),
                                   rtol=2e-3, atol=1e-7)
    assert np.all(scores.mass[:, 1] > 0)  # "no opinion" starts with the token " no" and still gets its mass
