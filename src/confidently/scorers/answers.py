"""Reading generated answers: which label an answer names, and the probability it states.

Lenient by design, because small models rarely follow a format: the first label word in the answer
(any of the label's words, compared as the verbalizer compares tokens: case, spaces and punctuation
ignored) is its label; the probability is the first one stated after that word (else anywhere),
written as a decimal (``0.85``, ``.85``), a percent (``85%``, ``85 percent``), a share of 10 or 100
(``8.5/10``, ``85 out of 100``), a bare number from 2 to 100 (read as a percent), or in words.
Every answer gets an outcome (:data:`~confidently.types.ANSWER_OUTCOMES`): nothing is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from confidently.tasks.task import Task, normalize_token

#: Words of estimative probability, after Sherman Kent's table ("Words of Estimative Probability",
#: CIA Studies in Intelligence, 1964: almost certain 93%, probable 75%, chances about even 50%,
#: probably not 30%, almost certainly not 7%), with common synonyms given the nearest of his values.
#: Longer phrases are matched first, so "very unlikely" never reads as "likely".
PROBABILITY_WORDS = {
    "almost certainly not": 0.07, "almost no chance": 0.07, "very unlikely": 0.07, "highly unlikely": 0.07,
    "extremely unlikely": 0.07, "impossible": 0.02, "probably not": 0.30, "unlikely": 0.30,
    "doubtful": 0.30, "chances about even": 0.50, "about even": 0.50, "fifty-fifty": 0.50, "toss-up": 0.50,
    "uncertain": 0.50, "somewhat likely": 0.60, "probably": 0.75, "probable": 0.75, "likely": 0.75,
    "fairly confident": 0.75, "confident": 0.85, "very likely": 0.93, "highly likely": 0.93,
    "very confident": 0.93, "almost certain": 0.93, "almost certainly": 0.93, "extremely likely": 0.93,
    "certain": 0.98, "certainly": 0.98, "definitely": 0.98,
}
_WORDS = "|".join(re.escape(w) for w in sorted(PROBABILITY_WORDS, key=len, reverse=True))
# Alternatives in order of preference at the same position: percent, share of 10/100, number, word.
_PROBABILITY = re.compile(
    r"(?P<percent>\d{1,3}(?:\.\d+)?)\s*(?:%|percent\b)"
    r"|(?P<share>\d{1,3}(?:\.\d+)?)\s*(?:/|out\s+of)\s*(?P<scale>100|10)\b"
    rf"|(?<![\w.])(?P<number>\d*\.\d+|\d+)(?![\w.%])"
    rf"|\b(?P<word>{_WORDS})\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"\b(?:i\s*(?:can ?not|can't|won't|am unable|'m unable|am not able|'m not able)|as an ai|i'?m sorry|"
    r"i am sorry|unable to (?:determine|answer|classify|help))",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Reading:
    """What one answer says: a label index and, for verbalized answers, the stated probability.

    ``outcome`` is ``ok``, or why the answer is unusable: ``empty``, ``refusal``, ``no_label`` or
    ``no_probability`` (a label but no readable probability).
    """

    outcome: str
    label: int | None = None
    probability: float | None = None


def _probability(match: re.Match) -> float | None:
    if match["percent"] is not None:
        value = float(match["percent"]) / 100
    elif match["share"] is not None:
        value = float(match["share"]) / float(match["scale"])
    elif match["number"] is not None:
        value = float(match["number"])
        if value > 1 and value.is_integer():
            value /= 100  # "Probability: 85" means 85%; "1.5" means nothing
    else:
        value = PROBABILITY_WORDS[re.sub(r"\s+", " ", match["word"].lower())]
    return value if 0 <= value <= 1 else None


def stated_probability(text: str, start: int = 0) -> float | None:
    """The first readable probability in ``text`` at or after ``start``, else anywhere in it, else None."""
    for begin in (start, 0):
        for match in _PROBABILITY.finditer(text, begin):
            value = _probability(match)
            if value is not None:
                return value
    return None


class AnswerReader:
    """Reads answers to one task's question.

    Parameters
    ----------
    task : its labels' words say which label an answer names.
    """

    def __init__(self, task: Task):
        self.owner = {normalize_token(w): j for j, label in enumerate(task.labels) for w in label.words}
        self.longest = max(len(_WORD.findall(w)) for label in task.labels for w in label.words)

    def label(self, text: str) -> tuple[int, int] | None:
        """(label index, end of the label word in ``text``) of the first label word, or None."""
        words = list(_WORD.finditer(text))
        for i in range(len(words)):
            for n in range(self.longest, 0, -1):  # the longest label phrase starting here wins
                if i + n > len(words):
                    continue
                key = normalize_token("".join(m.group() for m in words[i:i + n]))
                if key in self.owner:
                    return self.owner[key], words[i + n - 1].end()
        return None

    def _named(self, text: str) -> tuple[tuple[int, int] | None, Reading | None]:
        """The label found, or why there is none: an answer that refuses before naming a label
        ("I cannot say yes or no") is a refusal, whatever it names afterwards."""
        if not text.strip():
            return None, Reading("empty")
        found = self.label(text)
        refusal = _REFUSAL.search(text)
        if refusal is not None and (found is None or refusal.start() < found[1]):
            return None, Reading("refusal")
        return found, None if found is not None else Reading("no_label")

    def settled(self, text: str) -> bool:
        """Whether no continuation of ``text`` can change :meth:`vote`'s reading: a whole label word stands
        in it (a character that cannot continue the word follows it), and no label is a phrase of several
        words that could start there. (No refusal phrase holds a label word, so one that would start
        before it is already in ``text``.)"""
        if self.longest > 1:
            return False
        found = self.label(text)
        return found is not None and found[1] < len(text)

    def vote(self, text: str) -> Reading:
        """A sampled answer: the label it names."""
        found, unusable = self._named(text)
        return unusable if found is None else Reading("ok", found[0])

    def verbalized(self, text: str) -> Reading:
        """A verbalized answer: the label it names and the probability it states that the label is right."""
        found, unusable = self._named(text)
        if found is None:
            return unusable
        probability = stated_probability(text, found[1])
        if probability is None:
            return Reading("no_probability", found[0])
        return Reading("ok", found[0], probability)
