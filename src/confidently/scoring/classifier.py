"""The classifier: a backend, a task and its verbalizer, behind a scikit-learn-like API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from confidently.backends import Backend, load_backend
from confidently.defaults import CHARS_PER_TOKEN_CAP, DEFAULT_BATCH_SIZE, DEFAULT_MAX_TEXT_TOKENS
from confidently.errors import ConfigError, DataError
from confidently.models.registry import DEFAULT_MODEL
from confidently.scorers.spec import ScorerSpec, as_spec
from confidently.tasks.task import Task, get_task
from confidently.types import Prediction, Scores, TokenProb

TRUNCATION_SIDES = ("middle", "left", "right")


def _cut(text: str, limit: int, side: str) -> str:
    """``text`` cut to ``limit`` characters: keep its end (``left``), start (``right``) or both (``middle``)."""
    if side == "left":
        return text[-limit:]
    if side == "right":
        return text[:limit]
    head = limit // 2
    return text[:head] + " … " + text[-(limit - head - 3):]


class Classifier:
    """A language model used as a classifier.

    Parameters
    ----------
    model : registry name (``confidently models``), local folder, ``.gguf`` file or hub id.
    task : built-in task name (``"sentiment"``), a task ``.json`` file, or a :class:`Task`.
    backend : backend name (``"transformers"``, ``"openai"``...) or a constructed :class:`Backend`.
    batch_size : prompts per forward pass.
    chat : override the task's choice of applying the chat template.
    max_text_tokens : texts longer than this are truncated (and flagged); default: 2048, or what fits
        the model's context next to the prompt when that is less.
    max_text_chars : texts longer than this many characters are cut to it (same rule, flagged) before
        they are tokenized; default: 16 characters per allowed token.
    truncation : which part of a long text is cut: ``middle`` (keep start and end), ``left``
        (keep the end) or ``right`` (keep the start).
    scorer : ``"logprob"`` (the label words' next-token probability, the default), ``"verbalized"``
        or ``"consistency"`` (from generated answers, for servers that return no logprobs), or a
        :class:`~confidently.scorers.ScorerSpec` with the black-box scorers' samples, temperature, seed.
    **backend_options : passed to the backend (``device``, ``dtype``, ``base_url``...).

    Examples
    --------
    >>> clf = Classifier(model="gemma-3-270m", task="sentiment")  # doctest: +SKIP
    >>> clf.predict_proba(["I love it", "I hate it"]).shape  # raw shares of the label mass  # doctest: +SKIP
    (2, 2)
    """

    def __init__(self, model: str = DEFAULT_MODEL, task: str | Task = "sentiment", *,
                 backend: str | Backend = "transformers", batch_size: int = DEFAULT_BATCH_SIZE, chat: bool | None = None,
                 max_text_tokens: int | None = None, max_text_chars: int | None = None, truncation: str = "middle",
                 scorer: ScorerSpec | str | None = None, **backend_options):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        for name, value in (("max_text_tokens", max_text_tokens), ("max_text_chars", max_text_chars)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 8):
                raise ConfigError(f"{name} must be a whole number of at least 8, got {value!r}")
        if truncation not in TRUNCATION_SIDES:
            raise ConfigError(f"truncation must be one of {', '.join(TRUNCATION_SIDES)}, got {truncation!r}")
        self.task = get_task(task)
        self.backend = backend if isinstance(backend, Backend) else load_backend(backend, model=model, **backend_options)
        self.batch_size = batch_size
        self.truncation = truncation
        self.chat = chat
        self.verbalizer = self.backend.verbalizer(self.task)
        if self.task.nearest is None:
            self.prefix, self.suffix = self.backend.prompt_parts(self.task, chat=chat)
            overhead = self.backend.count_tokens(self.prefix + self.suffix) + 8
        else:
            overhead = self.backend.count_tokens(self._per_text_shots(chat)) + 8
        self._limits_given = (max_text_tokens, max_text_chars)  # None: what fits this prompt (asking() recomputes)
        self.max_text_tokens = max_text_tokens or max(16, min(DEFAULT_MAX_TEXT_TOKENS,
                                                              self.backend.max_context - overhead))
        self.max_text_chars = max_text_chars or CHARS_PER_TOKEN_CAP * self.max_text_tokens
        self.scorer = as_spec(scorer)
        self._black_box = None
        if self.scorer.black_box:
            from confidently.scorers.blackbox import BlackBoxScorer

            self._black_box = BlackBoxScorer(self, self.scorer)
        if self.task.nearest is not None and self.scorer.black_box:
            raise ConfigError(f"nearest shots need the logprob scorer; the {self.scorer.name} scorer asks its own "
                              "question (use --scorer logprob or --shot-selection balanced)")
        if self.task.ensemble and self.scorer.black_box:
            raise ConfigError(f"a prompt ensemble combines next-token class masses; the {self.scorer.name} scorer "
                              "generates answers (use --scorer logprob)")
        # A prompt ensemble asks through one classifier per prompt (each with its own cached prefix).
        self._per_prompt = tuple(self.asking(prompt) for prompt in self.task.prompts) if self.task.ensemble else ()

    def _per_text_shots(self, chat: bool | None) -> str:
        """Prompt parts for nearest shots: ``prefix`` (shared by every text) + the text's examples + ``_shots_tail``
        (the question's start) + text + ``suffix``. The examples are data like the text: the backend reads all
        of it, from the examples to the text, as plain text. Returns the longest prompt but its text."""
        from confidently.backends.text_as_data import TEXT_MARKER
        from confidently.tasks.shots import shots_template, worked_examples

        marker = TEXT_MARKER.replace("TEXT", "SHOTS")  # where each text's examples go
        with_marker = replace(self.task, nearest=None, template=shots_template(self.task, marker))
        prefix, self.suffix = self.backend.prompt_parts(with_marker, chat=chat)
        self.prefix, _, self._shots_tail = prefix.partition(marker)
        self.backend.text_slots.add(self.prefix, self.suffix)
        longest = worked_examples(self.task, [(text, 0) for text in self.task.nearest.longest_texts])
        return self.prefix + longest + self._shots_tail + self.suffix

    def _around(self, text: str, fitted: str) -> str:
        """The prompt for ``text`` (``fitted``: after truncation): with nearest shots, its own examples
        (chosen by the whole text) sit between the shared prefix and the question."""
        if self.task.nearest is None:
            return self.prefix + fitted + self.suffix
        from confidently.tasks.shots import worked_examples

        block = worked_examples(self.task, self.task.nearest.examples(text))
        return self.prefix + block + self._shots_tail + fitted + self.suffix

    @property
    def prompt_classifiers(self) -> tuple[Classifier, ...]:
        """One classifier per prompt the task asks, its own first: ``(self,)`` unless it has a prompt ensemble."""
        return self._per_prompt or (self,)

    def asking(self, task: Task) -> Classifier:
        """This classifier's model (the same backend: no second copy) and options, asking ``task``; text limits
        not given explicitly are what fits ``task``'s prompt, as a classifier built for ``task`` would have."""
        max_text_tokens, max_text_chars = self._limits_given
        return Classifier(backend=self.backend, task=task, batch_size=self.batch_size, chat=self.chat,
                          max_text_tokens=max_text_tokens, max_text_chars=max_text_chars,
                          truncation=self.truncation, scorer=self.scorer)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.task.label_names

    def fingerprint(self) -> str:
        """Everything that determines the scores: backend weights, precision, adapter, prompt, labels, scorer."""
        parts = [self.backend.fingerprint(), self.task.fingerprint(), repr(self.chat),
                 str(self.max_text_tokens), str(self.max_text_chars), self.truncation]
        return "|".join(parts + ([self.scorer.key()] if self.scorer.black_box else []))

    # -- prompts ---------------------------------------------------------------------------
    def _fit_text(self, text: str) -> tuple[str, bool]:
        cut = len(text) > self.max_text_chars
        if cut:  # never tokenize a huge text whole: cut its characters by the same rule first
            text = _cut(text, self.max_text_chars, self.truncation)
        try:
            ids = self.backend.encode_text(text)
        except NotImplementedError:
            return text, cut
        limit = self.max_text_tokens
        if len(ids) <= limit:
            return text, cut
        if self.truncation == "left":
            kept = self.backend.decode(ids[-limit:])
        elif self.truncation == "right":
            kept = self.backend.decode(ids[:limit])
        else:
            head = limit // 2
            kept = self.backend.decode(ids[:head]) + " … " + self.backend.decode(ids[-(limit - head - 3):])
        return kept, True

    def prompt(self, text: str) -> str:
        """The exact prompt the model sees for ``text`` (after any truncation)."""
        if self._black_box is not None:
            return self._black_box.prompt(text)
        return self._around(text, self._fit_text(text)[0])

    def prompts(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The prompts the model sees for ``texts`` and, per text, whether it was truncated.

        Raises
        ------
        DataError
            A text is empty or not a string.
        """
        texts = list(texts)
        _check_texts(texts)
        fitted = [self._fit_text(t) for t in texts]
        truncated = np.array([t for _, t in fitted], dtype=bool)
        if self._black_box is not None:  # a black-box scorer asks its own question
            return [self._black_box.prefix + text + self._black_box.suffix for text, _ in fitted], truncated
        return [self._around(text, cut) for text, (cut, _) in zip(texts, fitted)], truncated

    # -- scoring -----------------------------------------------------------------------------
    def score(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None,
              hidden: bool = False) -> Scores:
        """Class scores for ``texts`` (see :class:`confidently.types.Scores`).

        Texts are batched by length (less padding); results come back in input order and do not
        depend on the batching (float32: within 1e-5). With ``hidden`` the final hidden state at the
        answer position is kept too (:attr:`Scores.hidden`, float32), from the same forward pass.

        A task with a prompt ensemble is asked every prompt (one forward pass each, the last one
        reporting ``progress``) and gives :meth:`Scores.ensemble`; ``hidden`` then keeps every prompt's
        class masses, what the ensemble's combiner reads.
        """
        if self._per_prompt:
            *first, last = self._per_prompt
            parts = [clf.score(texts) for clf in first] + [last.score(texts, progress=progress)]
            return Scores.ensemble(parts, keep_masses=hidden)
        if self._black_box is not None:
            self._no_hidden(hidden)
            texts = list(texts)
            _check_texts(texts)
            return self._black_box.score(texts, progress=progress)
        all_prompts, truncated = self.prompts(texts)
        n, k = len(all_prompts), len(self.labels)
        mass = np.zeros((n, k))
        other = np.zeros(n)
        uncovered = None if self.backend.exact else np.zeros(n)
        states: np.ndarray | None = None
        order = sorted(range(n), key=lambda i: -len(all_prompts[i]))
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            prompts = [all_prompts[i] for i in idx]
            if hidden:
                m, o, u, h = self.backend.score_prompts_with_hidden(prompts, self.verbalizer,
                                                                    shared_prefix=self.prefix)
                if states is None:
                    states = np.zeros((n, h.shape[1]), dtype=np.float32)
                states[idx] = h
            else:
                m, o, u = self.backend.score_prompts(prompts, self.verbalizer, shared_prefix=self.prefix)
            mass[idx], other[idx] = m, o
            if uncovered is not None and u is not None:
                uncovered[idx] = u
            if progress is not None:
                progress(len(idx))
        return Scores(self.labels, mass, other, truncated, uncovered, states)

    def _no_hidden(self, hidden: bool) -> None:
        """Refuse hidden states from a black-box scorer: it generates answers, no forward pass gives one."""
        if hidden:
            raise ConfigError(f"hidden states come from the logprob scorer's forward pass; the {self.scorer.name} "
                              "scorer generates answers and has none (a hidden-state probe needs --scorer logprob)")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Raw (uncalibrated) class probabilities, shape (n_texts, n_labels), columns in :attr:`labels` order."""
        return self.score(texts).probs

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Raw predicted labels (the most class mass); see :class:`CalibratedClassifier` for calibrated ones."""
        return self.score(texts).predicted_labels

    def explain(self, text: str, *, top_k: int = 10,
                hidden: bool = False) -> tuple[Scores, dict[str, list[TokenProb]], list[TokenProb]]:
        """One text's scores, each label's token variants and the ``top_k`` next tokens.

        A dense backend runs the model once and tokenizes the text once: the class masses, variants,
        top tokens and (with ``hidden``) the final hidden state all come from the same forward pass.
        """
        _check_texts([text])
        if self._per_prompt:  # the variants and top tokens are the first prompt's
            scores, variants, top = self._per_prompt[0].explain(text, top_k=top_k)
            parts = [scores] + [clf.score([text]) for clf in self._per_prompt[1:]]
            return Scores.ensemble(parts, keep_masses=hidden), variants, top
        if self._black_box is not None:  # generated answers: no token variants, no next-token list
            self._no_hidden(hidden)
            return self.score([text]), {}, []
        fitted, truncated = self._fit_text(text)
        prompt = self._around(text, fitted)
        variants: dict[str, list[TokenProb]] = {}
        top: list[TokenProb] = []
        states = None
        if hidden:
            logprobs, states = self.backend.next_token_logprobs_and_hidden([prompt], shared_prefix=self.prefix)
        elif self.backend.exact:
            logprobs = self.backend.next_token_logprobs([prompt], shared_prefix=self.prefix)
        if self.backend.exact:
            mass, other, uncovered = self.backend.class_mass([prompt], logprobs, self.verbalizer,
                                                             shared_prefix=self.prefix)
            row = logprobs[0]
            variants = self.verbalizer.variants(row)
            vocab = self.backend.vocabulary()
            top = [TokenProb(r, vocab[i], float(row[i]), int(i)) for r, i in enumerate(np.argsort(-row)[:top_k], 1)]
        else:
            mass, other, uncovered = self.backend.score_prompts([prompt], self.verbalizer, shared_prefix=self.prefix)
            if top_k:
                top = self.backend.top_tokens(prompt, top_k)
        scores = Scores(self.labels, np.asarray(mass, dtype=float), np.asarray(other, dtype=float),
                        np.array([truncated]), None if uncovered is None else np.asarray(uncovered, dtype=float),
                        states)
        return scores, variants, top

    def classify(self, text: str, *, top_k: int = 10) -> Prediction:
        """One text, explained and uncalibrated: raw prediction, class masses, token variants, top tokens.

        For calibrated answers and decisions use :class:`confidently.CalibratedClassifier`.
        """
        from confidently.decision.decisions import decide

        scores, variants, top = self.explain(text, top_k=top_k)
        return decide(scores.probs, labels=self.labels).prediction(0, text, scores, variants=variants,
                                                                   top_tokens=top)

    def next_token(self, prompt: str, *, top_k: int = 12, raw: bool = False) -> list[TokenProb]:
        """The ``top_k`` most likely next tokens after ``prompt`` (chat template applied unless ``raw``)."""
        if not prompt:
            raise DataError("the prompt is empty")
        if len(prompt) > self.max_text_chars:
            raise DataError(f"the prompt has {len(prompt):,} characters, more than max_text_chars "
                            f"({self.max_text_chars:,}): shorten it or raise --max-text-chars")
        full = self.backend.format_prompt(prompt, chat=False if raw else self.chat, answer_suffix="")
        return self.backend.top_tokens(full, top_k)


def _check_texts(texts: Sequence[str]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"text {i} is empty" if isinstance(text, str) else f"text {i} is not a string")
