"""Class masses from the few tokens a server returns, and what the rest may hide.

A server returns the top-k next tokens (or, on new vLLM releases, the logprobs of token ids we
name). Every returned token that spells a label word counts towards that label, with the same rules
as the dense path (:meth:`Verbalizer.class_mass_from_top`); the probability the server did not
return is the *uncovered* mass: some of it may belong to a label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from confidently.backends.replies import NextToken
from confidently.errors import BackendError, TaskError
from confidently.tasks.task import LabelTokens, Task, Verbalizer


class TopKVerbalizer(Verbalizer):
    """A task bound to no vocabulary: label words are matched against the token texts returned.

    Used when no tokenizer is at hand (a remote model known only by name); only
    :meth:`class_mass_from_top` applies, and label words are not checked against a vocabulary.
    """

    def __init__(self, task: Task):
        if task.multi_token:
            raise TaskError(f"task {task.name!r} has multi_token=True: a server's next-token list can only "
                            "score label words that are single tokens; use the transformers backend")
        # Deliberately no super().__init__: there is no vocabulary to scan.
        self.task = task
        self.vocabulary = ()
        self.labels = tuple(LabelTokens(np.zeros(0, dtype=np.int64), ()) for _ in task.labels)
        self.sequences, self.sequence_weights = (), np.zeros((0, len(task.labels)))

    def class_mass(self, logprobs: np.ndarray) -> np.ndarray:
        raise BackendError("this verbalizer has no vocabulary: it scores top-k token lists only")


def label_ids(verbalizer: Verbalizer) -> list[int]:
    """Every single-token variant id of every label (empty without a vocabulary)."""
    return sorted({int(i) for label in verbalizer.labels for i in label.token_ids})


def _exact_row(reply: NextToken, verbalizer: Verbalizer) -> np.ndarray | None:
    """Class masses from logprobs of every label id, or None when any id is missing from the reply."""
    row = np.zeros(len(verbalizer.labels))
    for j, label in enumerate(verbalizer.labels):
        if not label.token_ids.size or any(int(i) not in reply.ids for i in label.token_ids):
            return None
        row[j] = math.fsum(math.exp(reply.ids[int(i)]) for i in label.token_ids)
    return row


def _as_text(reply: NextToken, vocabulary: Sequence[str]) -> dict[str, float]:
    """The reply keyed by token text; tokens whose texts coincide have their probabilities added."""
    probs = {text: math.exp(logprob) for text, logprob in reply.logprobs.items()}
    for token_id, logprob in reply.ids.items():
        # An id outside the vocabulary we know cannot mean a label; keep its mass as "other".
        text = vocabulary[token_id] if token_id < len(vocabulary) else f"token_id:{token_id}"
        probs[text] = probs.get(text, 0.0) + math.exp(logprob)
    return {text: math.log(p) if p > 0 else -math.inf for text, p in probs.items()}


def masses(replies: Sequence[NextToken], verbalizer: Verbalizer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class mass (n, k), other mass (n,) and uncovered mass (n,) for a batch of replies.

    A reply holding the logprob of every label id (vLLM ``logprob_token_ids``) gives exact masses:
    other = 1 - label mass, uncovered = 0. Otherwise the returned top-k tokens count: other is the
    returned mass on non-label tokens and uncovered = 1 - returned mass.
    """
    n, k = len(replies), len(verbalizer.labels)
    mass, other, uncovered = np.zeros((n, k)), np.zeros(n), np.zeros(n)
    for i, reply in enumerate(replies):
        exact = _exact_row(reply, verbalizer) if reply.ids else None
        if exact is not None:
            mass[i] = exact
            other[i] = max(0.0, 1.0 - exact.sum())
            continue
        mass[i] = verbalizer.class_mass_from_top([_as_text(reply, verbalizer.vocabulary)])[0]
        covered = reply.covered
        other[i] = max(0.0, covered - mass[i].sum())
        uncovered[i] = max(0.0, 1.0 - covered)
    return mass, other, uncovered
