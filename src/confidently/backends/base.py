"""The backend contract: where next-token distributions come from.

A backend turns prompts into next-token log-probabilities. Dense backends (a local model) return
the full-vocabulary distribution and implement :meth:`Backend.next_token_logprobs`; servers that
return only the top-k tokens override :meth:`Backend.score_prompts` instead. Everything after this
stage (verbalizer, calibration, decisions) is the same for every backend.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from confidently.backends.text_as_data import TEXT_MARKER, TextSlots
from confidently.tasks.task import Task, Verbalizer
from confidently.types import TokenProb


@dataclass(frozen=True)
class Generated:
    """One generated answer: its text and how many tokens it took, or why there is none.

    ``error`` is None for an answer; otherwise one line saying what failed (a timeout, an HTTP
    error, a malformed reply), and ``text`` is empty.
    """

    text: str
    tokens: int
    error: str | None = None


def sample_seed(seed: int, prompt: str, sample: int) -> int:
    """The seed of one sampled answer: fixed by the user's seed, the prompt and the sample's number,
    so a text's answers do not depend on what else is scored with it or in which order."""
    digest = hashlib.sha256(f"{seed}\x00{sample}\x00{prompt}".encode("utf-8")).hexdigest()
    return int(digest[:8], 16)


class Backend(ABC):
    """Base class of every backend.

    Attributes
    ----------
    name : the backend's registered name (``--backend``).
    exact : True when the backend returns the full next-token distribution.
    model_name : the model as the user named it.
    weights_id : identifies the exact weights (sha256 or hub id); caches and adapters check it.
    precision : what the scores are computed in (``float32``, ``bfloat16``, ``bfloat16-invariant``…),
        or None where the backend cannot tell (a remote server). Calibrators fitted on one
        precision's scores belong to that precision; it is part of :meth:`fingerprint`.
    hashes_weights : True when the weights are here to be hashed (a local model), so a calibration
        bundle's recorded weights can be checked; False for a serving engine, whose weights only a
        bundle's canary (re-scored through it) can vouch for.
    mixed_adapter_batches : True when one :meth:`next_token_logprobs` call can score each prompt with
        its own adapter (``adapters=``).
    """

    name: ClassVar[str]
    exact: ClassVar[bool] = True
    hashes_weights: ClassVar[bool] = True
    mixed_adapter_batches: ClassVar[bool] = False
    model_name: str
    weights_id: str
    precision: str | None = None

    # -- prompts -----------------------------------------------------------------------------
    @abstractmethod
    def format_prompt(self, message: str, *, chat: bool | None = None, system_prompt: str | None = None,
                      answer_suffix: str = "\nAnswer:") -> str:
        """The full prompt string for a user message (chat template, or ``answer_suffix``)."""

    def prompt_parts(self, task: Task, *, chat: bool | None = None) -> tuple[str, str]:
        """(prefix, suffix) such that ``prefix + text + suffix`` is the prompt for ``text``."""
        use_chat = task.chat if chat is None else chat
        rendered = self.format_prompt(task.message(TEXT_MARKER), chat=use_chat,
                                      system_prompt=task.system_prompt, answer_suffix=task.answer_suffix)
        prefix, _, suffix = rendered.partition(TEXT_MARKER)
        self.text_slots.add(prefix, suffix)
        return prefix, suffix

    @property
    def text_slots(self) -> TextSlots:
        """Where user text sits in the prompts this backend rendered (text is data, never control tokens)."""
        if "_text_slots" not in self.__dict__:
            self._text_slots = TextSlots()
        return self._text_slots

    # -- vocabulary ----------------------------------------------------------------------------
    @abstractmethod
    def vocabulary(self) -> Sequence[str]:
        """Decoded text of every token id."""

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError(f"backend {self.name} cannot tokenize")

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError(f"backend {self.name} cannot detokenize")

    def encode_text(self, text: str) -> list[int]:
        """Token ids of user text read as plain text: a special-token string in it stays text."""
        return self.encode(text)

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    @property
    def max_context(self) -> int:
        return 2048

    def verbalizer(self, task: Task) -> Verbalizer:
        return Verbalizer(task, self.vocabulary(), self.encode)

    # -- scoring -------------------------------------------------------------------------------
    def next_token_logprobs(self, prompts: Sequence[str], *, shared_prefix: str = "") -> np.ndarray:
        """Full-vocabulary next-token log-probabilities, shape (n_prompts, vocab_size).

        ``shared_prefix`` is a string every prompt starts with; backends may compute it once.
        """
        raise NotImplementedError(f"backend {self.name} returns no full distribution")

    def sequence_logprobs(self, prompts: Sequence[str], sequences: Sequence[Sequence[int]], *,
                          shared_prefix: str = "") -> np.ndarray:
        """Log-probability of each token sequence after each prompt, shape (n_prompts, n_sequences)."""
        raise NotImplementedError(f"backend {self.name} cannot score token sequences")

    def score_prompts(self, prompts: Sequence[str], verbalizer: Verbalizer, *,
                      shared_prefix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Class mass (n, k), other mass (n,) and uncovered mass (n,) or None when exact."""
        logprobs = self.next_token_logprobs(prompts, shared_prefix=shared_prefix)
        return self.class_mass(prompts, logprobs, verbalizer, shared_prefix=shared_prefix)

    def next_token_logprobs_and_hidden(self, prompts: Sequence[str], *,
                                       shared_prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
        """:meth:`next_token_logprobs` and the final hidden state at the answer position, (n, d) float32.

        The hidden state is the input of the output layer in the same forward pass that gives the
        next-token distribution (what a hidden-state probe reads); only local models have one.
        """
        raise NotImplementedError(f"backend {self.name} exposes no hidden states: the probe needs a local model")

    def score_prompts_with_hidden(self, prompts: Sequence[str], verbalizer: Verbalizer, *,
                                  shared_prefix: str = "") -> tuple[np.ndarray, np.ndarray, None, np.ndarray]:
        """:meth:`score_prompts` plus the final hidden states of the same pass (dense backends)."""
        logprobs, hidden = self.next_token_logprobs_and_hidden(prompts, shared_prefix=shared_prefix)
        return (*self.class_mass(prompts, logprobs, verbalizer, shared_prefix=shared_prefix), hidden)

    def class_mass(self, prompts: Sequence[str], logprobs: np.ndarray, verbalizer: Verbalizer, *,
                   shared_prefix: str = "") -> tuple[np.ndarray, np.ndarray, None]:
        """:meth:`score_prompts` from already computed next-token ``logprobs`` of ``prompts`` (dense backends).

        Multi-token label words still cost one more pass over their token sequences.
        """
        mass = verbalizer.class_mass(logprobs)
        if verbalizer.has_sequences:
            mass = verbalizer.add_sequence_mass(
                mass, self.sequence_logprobs(prompts, verbalizer.sequences, shared_prefix=shared_prefix))
        other = np.clip(1.0 - mass.sum(axis=1), 0.0, 1.0)
        return mass, other, None

    def top_tokens(self, prompt: str, k: int) -> list[TokenProb]:
        """The ``k`` most probable next tokens after ``prompt``."""
        row = self.next_token_logprobs([prompt])[0]
        vocab = self.vocabulary()
        order = np.argsort(-row)[:k]
        return [TokenProb(rank, vocab[i], float(row[i]), int(i)) for rank, i in enumerate(order, 1)]

    def generate(self, prompts: Sequence[str], *, samples: int, max_new_tokens: int, temperature: float,
                 seed: int, shared_prefix: str = "", settled: Callable[[str], bool] | None = None
                 ) -> list[list[Generated]]:
        """``samples`` generated answers per prompt (black-box scorers, :mod:`confidently.scorers`).

        ``shared_prefix`` is a string every prompt starts with; backends may compute it once.
        ``settled``: an answer whose text so far it holds true for says all it will (e.g. a vote once its
        label word is complete); a backend may end it there.

        ``temperature`` 0 is greedy decoding; above 0, plain sampling at that temperature (no top-k or
        top-p), each answer seeded by :func:`sample_seed`, so the same seed gives the same answers. A
        failed generation is a :class:`Generated` with ``error`` set, never an exception, so one bad
        reply costs one row, not the run.
        """
        raise NotImplementedError(f"backend {self.name} cannot generate text")

    def fingerprint(self) -> str:
        """Identifies everything that changes scores (weights, precision, adapter) for caches."""
        return f"{self.name}:{self.weights_id}"

    def served_as(self, adapter: str | None) -> str | None:
        """The model name a serving engine knows the base model (None) or ``adapter`` by; None for a local model."""
        return None

    def weights_id_of(self, adapter: str | None) -> str:
        """The :attr:`weights_id` a calibration bundle records when fitted with ``adapter`` active (None: the
        base model). Locally the base weights' (the adapter's own weights are hashed apart); on a serving
        engine, the engine and the model name the adapter is served under."""
        return self.weights_id
