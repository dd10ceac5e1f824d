"""Black-box scorers on OpenAI-compatible servers that return no logprobs: request shapes, every kind
of bad reply counted (never a crash), and a real llama.cpp server."""

from __future__ import annotations

import numpy as np
import pytest
from fake_server import FakeServer

from confidently.backends.openai_backend import OpenAIBackend
from confidently.scoring.classifier import Classifier
from confidently.errors import BackendError
from confidently.scorers import ScorerSpec

FAST = {"max_retries": 1, "timeout": 2.0}


def classifier(server: FakeServer, spec: ScorerSpec, **options) -> Classifier:
    backend = OpenAIBackend("fake", base_url=server.url, **{**FAST, **options})
    backend.transport.backoff = 0.01
    return Classifier(model="fake", backend=backend, scorer=spec)


def test_verbalized_reads_every_kind_of_reply_and_counts_the_bad_ones(fake_server):
    replies = {"great film": "Answer: yes\nProbability: 0.8", "awful film": "no, 90%",
               "fine film": "Yes - very likely", "odd film": "I'm sorry, I cannot help with that.",
               "blank film": "", "null film": None, "vague film": "It is hard to say.",
               "bare film": "yes", "wild film": "Answer: no\nProbability: 1.7"}
    fake_server.behaviour.answer = lambda prompt, seed: next(v for k, v in replies.items() if k in prompt)
    clf = classifier(fake_server, ScorerSpec.make("verbalized"))
    texts = list(replies)
    scores = clf.score(texts)
    body = fake_server.requests[0]
    assert "logprobs" not in body and "top_logprobs" not in body
    assert body["temperature"] == 0 and body["max_tokens"] == 24
    assert "the probability, from 0.0 to 1.0, that your answer is correct" in body["messages"][-1]["content"]
    outcome = dict(zip(texts, scores.answers.outcome))
    assert outcome == {"great film": "ok", "awful film": "ok", "fine film": "ok", "odd film": "refusal",
                       "blank film": "empty", "null film": "empty", "vague film": "no_label",
                       "bare film": "no_probability", "wild film": "no_probability"}
    probs = scores.probs
    assert probs[0] == pytest.approx([0.2, 0.8]) and probs[1] == pytest.approx([0.9, 0.1])
    assert probs[2, 1] == pytest.approx(0.93)  # Kent's "very likely"
    unusable = scores.answers.outcome != "ok"
    assert np.allclose(probs[unusable], 0.5) and np.allclose(scores.other_mass[unusable], 1.0)
    assert (scores.answers.calls == 1).all()
    assert scores.answers.tokens[0] == 4  # from the server's usage (one token per word in the fake)


def test_consistency_sends_k_seeded_requests_and_takes_each_labels_share(fake_server):
    # The fake answers yes for even seeds: the share of yes follows the seeds sent.
    fake_server.behaviour.answer = lambda prompt, seed: "Yes." if seed % 2 == 0 else "No"
    spec = ScorerSpec.make("consistency", samples=6, temperature=0.7, seed=3)
    clf = classifier(fake_server, spec)
    scores = clf.score(["one text", "another text"])
    assert len(fake_server.requests) == 12
    seeds = [body["seed"] for body in fake_server.requests]
    assert len(set(seeds)) == 12 and all(body["temperature"] == 0.7 for body in fake_server.requests)
    for i, text in enumerate(["one text", "another text"]):
        sent = [b["seed"] for b in fake_server.requests if text in b["messages"][-1]["content"]]
        assert scores.mass[i, 1] == pytest.approx(sum(s % 2 == 0 for s in sent) / 6)
    assert (scores.answers.calls == 6).all() and (scores.answers.outcome == "ok").all()
    again = clf.score(["one text", "another text"])  # same seed: the same requests, so the same scores
    assert sorted(b["seed"] for b in fake_server.requests[12:]) == sorted(seeds)  # arrival order varies
    np.testing.assert_array_equal(again.mass, scores.mass)


def test_timeouts_and_server_errors_are_counted_not_raised(fake_server):
    fake_server.behaviour.answer = lambda prompt, seed: "yes"
    fake_server.behaviour.delay = 3.0  # beyond the 2 s timeout
    clf = classifier(fake_server, ScorerSpec.make("consistency", samples=2))
    with pytest.warns(UserWarning, match="did not answer within"):
        scores = clf.score(["slow one"])
    assert list(scores.answers.outcome) == ["error"] and scores.answers.unusable[0] == 2
    assert scores.probs[0] == pytest.approx([0.5, 0.5])
    fake_server.behaviour.delay = 0.0
    fake_server.behaviour.mode, fake_server.behaviour.status = "status", 400
    with pytest.warns(UserWarning, match="HTTP 400"):
        assert clf.score(["rejected"]).answers.outcome[0] == "error"


def test_a_wrong_url_or_key_stops_the_run(fake_server):
    fake_server.behaviour.answer = lambda prompt, seed: "yes"
    fake_server.behaviour.mode, fake_server.behaviour.status = "status", 404
    with pytest.raises(BackendError, match="404"):
        classifier(fake_server, ScorerSpec.make("verbalized")).score(["a text"])


def test_completions_endpoint_reads_the_text_field(fake_server):
    fake_server.behaviour.answer = lambda prompt, seed: " no\nProbability: 0.7"
    clf = classifier(fake_server, ScorerSpec.make("verbalized"), endpoint="completions")
    scores = clf.score(["meh"])
    assert fake_server.requests[0]["prompt"].endswith("Probability: <number>\nAnswer:")
    assert scores.probs[0] == pytest.approx([0.7, 0.3])


@pytest.mark.model
@pytest.mark.parametrize("name", ["verbalized", "consistency"])
def test_black_box_scorers_on_a_real_llama_cpp_server(llama_server, name):
    spec = ScorerSpec.make(name, **({"samples": 3} if name == "consistency" else {}))
    backend = OpenAIBackend(llama_server.model, base_url=llama_server.url, endpoint="chat", tokenizer=None,
                            max_concurrency=1)
    clf = Classifier(model=llama_server.model, backend=backend, scorer=spec)
    texts = ["I love this movie, it is wonderful!", "The worst meal I have ever had.",
             "Absolutely fantastic service.", "Terrible, I want my money back."]
    scores = clf.score(texts)
    assert (scores.answers.calls == spec.samples).all() and (scores.answers.tokens > 0).all()
    usable = scores.answers.outcome == "ok"
    assert usable.sum() >= 3, list(scores.answers.outcome)
    # llama.cpp honours the seed: asking again gives the same answers, so the same scores. (Whether they
    # are right is not asserted: this 0.5B model leans to "no", as the README's measurement shows.)
    np.testing.assert_array_equal(clf.score(texts).mass, scores.mass)
