"""The black-box scorers: class scores from generated text alone, for models that return no logprobs.

Each text gets ``samples`` generated answers (:meth:`Backend.generate`), each read by
:class:`~confidently.scorers.answers.AnswerReader` into a vector over the labels:

* ``consistency`` asks the task's own question and reads each sampled answer's label: one vote,
  so a label's mass is its share of the answers (Wang et al. 2023, "Self-Consistency").
* ``verbalized`` asks for the label and the probability that it is right (the prompt follows Tian et
  al. 2023, "Just Ask for Calibration"): the stated label gets that probability, the other labels
  share the rest equally; with several samples the vectors are averaged.

An answer that gives no usable label (empty, a refusal, no label word, no readable probability, a
failed request) adds to the row's ``other_mass`` instead; a row with no usable answer has no label
mass, so its class probabilities are uniform (:attr:`Scores.probs`) and its confidence 1/k: it
carries no information and no threshold above 1/k automates it. Every row keeps its outcome in
:attr:`Scores.answers`; nothing is dropped.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from confidently.scorers.answers import AnswerReader, Reading
from confidently.scorers.spec import ScorerSpec
from confidently.types import ANSWER_OUTCOMES, Answers, Scores

if TYPE_CHECKING:
    from confidently.scoring.classifier import Classifier

VERBALIZED_INSTRUCTION = (
    "\n\nGive your answer ({choices}) and the probability, from 0.0 to 1.0, that your answer is correct, "
    "in exactly this form:\nAnswer: <{choices}>\nProbability: <number>"
)


def row_outcome(readings: Sequence[Reading]) -> str:
    """``ok`` when any answer is usable, else the most common reason (ties: the order of
    :data:`ANSWER_OUTCOMES`)."""
    counts = Counter(r.outcome for r in readings)
    if counts["ok"]:
        return "ok"
    return max((o for o in ANSWER_OUTCOMES if counts[o]), key=lambda o: counts[o])


class BlackBoxScorer:
    """Scores a classifier's texts from generated answers (see the module docstring).

    Parameters
    ----------
    classifier : its backend generates, its task says what the labels are, its truncation rules apply.
    spec : a ``verbalized`` or ``consistency`` :class:`ScorerSpec`.
    """

    def __init__(self, classifier: Classifier, spec: ScorerSpec):
        self.classifier = classifier
        self.spec = spec
        self.reader = AnswerReader(classifier.task)
        if spec.name == "verbalized":
            task = classifier.task
            choices = " or ".join(label.words[0] for label in task.labels)
            asked = dataclasses.replace(task, template=task.template + VERBALIZED_INSTRUCTION.format(choices=choices))
            self.prefix, self.suffix = classifier.backend.prompt_parts(asked, chat=classifier.chat)
            self.read = self.reader.verbalized
        else:
            self.prefix, self.suffix = classifier.prefix, classifier.suffix
            self.read = self.reader.vote
        # A vote is read from its first label word: generation may end once that word is whole. A verbalized
        # answer's probability comes after its label, so it runs to its end.
        self.settled = self.reader.settled if spec.name == "consistency" else None

    def prompt(self, text: str) -> str:
        """The exact prompt the model answers for ``text`` (after any truncation)."""
        return self.prefix + self.classifier._fit_text(text)[0] + self.suffix

    def _vector(self, reading: Reading, n_labels: int) -> np.ndarray:
        vector = np.zeros(n_labels)
        if reading.outcome != "ok":
            return vector
        if reading.probability is None:  # a vote
            vector[reading.label] = 1.0
            return vector
        vector[:] = (1.0 - reading.probability) / (n_labels - 1)
        vector[reading.label] = reading.probability
        return vector

    def score(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> Scores:
        """Class scores of ``texts``, with every row's answers accounted for in :attr:`Scores.answers`."""
        clf, spec = self.classifier, self.spec
        fitted = [clf._fit_text(t) for t in texts]
        n, k = len(texts), len(clf.labels)
        mass, other = np.zeros((n, k)), np.zeros(n)
        outcome = np.empty(n, dtype=object)
        calls, tokens, unusable = (np.zeros(n, dtype=np.int64) for _ in range(3))
        failures: list[str] = []
        for start in range(0, n, clf.batch_size):
            rows = range(start, min(n, start + clf.batch_size))
            prompts = [self.prefix + fitted[i][0] + self.suffix for i in rows]
            generated = clf.backend.generate(prompts, samples=spec.samples, max_new_tokens=spec.max_new_tokens,
                                             temperature=spec.temperature, seed=spec.seed, shared_prefix=self.prefix,
                                             settled=self.settled)
            for i, answers in zip(rows, generated):
                failures += [a.error for a in answers if a.error is not None]
                readings = [Reading("error") if a.error is not None else self.read(a.text) for a in answers]
                mass[i] = sum(self._vector(r, k) for r in readings) / len(readings)
                unusable[i] = sum(r.outcome != "ok" for r in readings)
                other[i] = unusable[i] / len(readings)
                outcome[i] = row_outcome(readings)
                calls[i], tokens[i] = len(answers), sum(a.tokens for a in answers)
            if progress is not None:
                progress(len(rows))
        if failures:  # counted as outcome "error"; the first message says why
            warnings.warn(f"{len(failures)} of {int(calls.sum())} generations failed and count as unusable "
                          f"answers; the first: {failures[0]}", stacklevel=2)
        truncated = np.array([t for _, t in fitted], dtype=bool)
        return Scores(clf.labels, mass, other, truncated, None,
                      answers=Answers(outcome.astype(str), calls, tokens, unusable))
