"""The black-box scorers on a real model (gemma-3-270m, a handful of texts): the same path as the
tiny-model tests, on weights that answer."""

from __future__ import annotations

import numpy as np
import pytest

from confidently.scoring.classifier import Classifier
from confidently.scorers import ScorerSpec

TEXTS = ["I love this movie, it is wonderful!", "The worst meal I have ever had.",
         "Absolutely fantastic service, thank you.", "Terrible. I want my money back."]
TRUTH = np.array([1, 0, 1, 0])


@pytest.fixture(scope="module")
def gemma():
    from confidently.backends.transformers_backend import TransformersBackend

    return TransformersBackend("gemma-3-270m", dtype="float32")


@pytest.mark.model
def test_consistency_on_a_real_model_is_reproducible_and_mostly_right(gemma):
    spec = ScorerSpec.make("consistency", samples=4, seed=11)
    scores = Classifier(backend=gemma, scorer=spec).score(TEXTS)
    again = Classifier(backend=gemma, scorer=spec, batch_size=1).score(TEXTS[::-1])
    np.testing.assert_array_equal(again.mass, scores.mass[::-1])
    assert (scores.answers.calls == 4).all() and (scores.answers.outcome == "ok").sum() >= 3
    usable = scores.answers.outcome == "ok"
    assert (scores.prediction == TRUTH)[usable].mean() >= 0.75, scores.mass


@pytest.mark.model
def test_verbalized_on_a_real_model_counts_every_answer(gemma):
    from confidently.scorers.answers import AnswerReader

    clf = Classifier(backend=gemma, scorer=ScorerSpec.make("verbalized", max_new_tokens=12))
    scores = clf.score(TEXTS)
    assert (scores.answers.calls == 1).all() and (scores.answers.tokens > 0).all()
    # The outcome of each row is what its (greedy, so repeatable) answer says, read again here; the
    # 270m base model mostly echoes the format instead of filling it in, which must count, not crash.
    answers = gemma.generate([clf.prompt(t) for t in TEXTS], samples=1, max_new_tokens=12, temperature=0, seed=0)
    readings = [AnswerReader(clf.task).verbalized(a[0].text) for a in answers]
    assert list(scores.answers.outcome) == [r.outcome for r in readings]
    usable = scores.answers.outcome == "ok"
    np.testing.assert_allclose(scores.probs[~usable], 0.5)  # no usable answer: no information
    for i in np.flatnonzero(usable):
        assert scores.probs[i, readings[i].label] == pytest.approx(readings[i].probability)
