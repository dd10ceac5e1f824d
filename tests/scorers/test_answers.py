"""Reading generated answers: labels, stated probabilities in numbers, percents and words, and every
unusable answer named by its outcome."""

from __future__ import annotations

import pytest

from confidently.scorers.answers import AnswerReader, Reading, stated_probability
from confidently.tasks.task import SENTIMENT, Label, Task

READER = AnswerReader(SENTIMENT)


@pytest.mark.parametrize("text, label, probability", [
    ("Answer: yes\nProbability: 0.85", 1, 0.85),
    ("No, 90%", 0, 0.90),
    ("yes (.6)", 1, 0.60),
    ("Positive. Probability: 85", 1, 0.85),  # a bare number above 1 is a percent
    ("YES - I am 8/10 sure", 1, 0.80),
    ("no; 70 out of 100", 0, 0.70),
    ("no, 40 percent", 0, 0.40),
    ("Answer: no\nProbability: 0", 0, 0.0),
    ("Answer: no\nProbability: 1", 0, 1.0),
    ("yes, very likely", 1, 0.93),
    ("no - very unlikely to be wrong", 0, 0.07),  # the longest phrase wins: never "likely"
    ("The answer is yes. I would say it is probably right.", 1, 0.75),
    ("Probability 0.9 ... answer: no", 0, 0.9),  # no number after the label: the one before it
])
def test_verbalized_answers_give_label_and_probability(text, label, probability):
    assert READER.verbalized(text) == Reading("ok", label, pytest.approx(probability))


@pytest.mark.parametrize("text, outcome", [
    ("", "empty"), ("   \n", "empty"),
    ("I'm sorry, but I cannot classify this text.", "refusal"),
    ("As an AI I cannot say yes or no.", "refusal"),  # refuses before naming a label
    ("The sentiment is unclear.", "no_label"),
    ("yes", "no_probability"),
    ("no, 1.7", "no_probability"),  # a decimal above 1 is no probability
    ("no, 250%", "no_probability"),
])
def test_unusable_verbalized_answers_are_named(text, outcome):
    reading = READER.verbalized(text)
    assert reading.outcome == outcome and reading.probability is None


def test_votes_take_the_first_label_word_whole():
    assert READER.vote("Yes.") == Reading("ok", 1)
    assert READER.vote(" no, it is not") == Reading("ok", 0)
    assert READER.vote("Nothing yet").outcome == "no_label"  # "no" inside a word is not the word "no"
    assert READER.vote("I can't tell").outcome == "refusal"


def test_multi_word_labels_are_found_as_phrases():
    task = Task("opinion", "{text}", (Label("none", ("no opinion",)), Label("no", ("no",)), Label("yes", ("yes",))))
    reader = AnswerReader(task)
    assert reader.vote("No opinion at all").label == 0 and reader.vote("no way").label == 1


def test_stated_probability_prefers_what_follows_the_label():
    assert stated_probability("3 reasons; yes at 0.7", start=9) == pytest.approx(0.7)
    assert stated_probability("nothing here") is None
