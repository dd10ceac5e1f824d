"""The typed objects that flow between stages: backend → task → scores → calibration → decisions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TokenProb:
    """One entry of a next-token distribution.

    Attributes
    ----------
    rank : 1-based rank by probability.
    token : the token's decoded text (whitespace kept).
    logprob : natural-log probability over the full vocabulary (or as the server returned it).
    token_id : vocabulary id, when the backend knows it.
    """

    rank: int
    token: str
    logprob: float
    token_id: int | None = None

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)

    def to_dict(self) -> dict:
        return {"rank": self.rank, "token": self.token, "token_id": self.token_id,
                "logprob": self.logprob, "prob": self.prob}


def label_may_be_hidden(mass: np.ndarray, uncovered: np.ndarray) -> np.ndarray:
    """Where a label could overtake the predicted one if the uncovered mass were all its own.

    ``mass`` has shape (n_samples, n_labels) and ``uncovered`` shape (n_samples,) (see
    :attr:`Scores.uncovered_mass`); returns a bool array of shape (n_samples,).
    """
    ordered = np.sort(mass, axis=1)
    return ordered[:, -2] + uncovered > ordered[:, -1]


#: What one black-box answer (or one text's answers) came to; every row has one, none is dropped.
ANSWER_OUTCOMES = ("ok", "no_label", "no_probability", "refusal", "empty", "error")


@dataclass(frozen=True)
class Answers:
    """Per row, what a black-box scorer's generated answers came to (see :mod:`confidently.scorers`).

    Attributes
    ----------
    outcome : str array (n_samples,): ``ok`` when the row has a usable score, else why not, one of
        :data:`ANSWER_OUTCOMES` (the row then scores uniform: it carries no information).
    calls : int array: model calls (generations) spent on the row.
    tokens : int array: tokens generated for the row.
    unusable : int array: answers of the row that gave no usable label (consistency: of its k samples).
    """

    outcome: np.ndarray
    calls: np.ndarray
    tokens: np.ndarray
    unusable: np.ndarray

    def subset(self, idx: np.ndarray) -> Answers:
        return Answers(self.outcome[idx], self.calls[idx], self.tokens[idx], self.unusable[idx])

    @staticmethod
    def concat(parts: list[Answers]) -> Answers:
        return Answers(*(np.concatenate([getattr(p, name) for p in parts])
                         for name in ("outcome", "calls", "tokens", "unusable")))

    def summary(self) -> dict:
        """Counts of every outcome, and calls and generated tokens per item (JSON-able)."""
        n = int(self.outcome.size)
        return {"n": n, "outcomes": {o: int((self.outcome == o).sum()) for o in ANSWER_OUTCOMES},
                "unusable_answers": int(self.unusable.sum()),
                "calls_per_item": float(self.calls.mean()) if n else 0.0,
                "tokens_per_item": float(self.tokens.mean()) if n else 0.0}


@dataclass(frozen=True)
class Scores:
    """Class scores for a batch of texts.

    Attributes
    ----------
    labels : the task's label names, in column order.
    mass : array of shape (n_samples, n_labels): the unnormalised probability the model put on each
        label (the exact sum of the next-token softmax over every token variant of the label, plus the
        probability of multi-token variants).
    other_mass : array of shape (n_samples,): probability on tokens that belong to no label.
    truncated : bool array of shape (n_samples,): the text was cut to fit the context.
    uncovered_mass : array of shape (n_samples,) or None: for servers that return only the top-k
        tokens, the probability they did not return (a label may hide there); None when exact.
    hidden : float32 array of shape (n_samples, n_features) or None, kept only when asked for: what a
        fitted combiner reads. The model's final hidden state at the answer position, from the same
        forward pass (a hidden-state probe reads it); for a prompt ensemble (:attr:`Task.ensemble`),
        every prompt's class masses side by side instead, ``(n_samples, prompts * n_labels)`` (its
        combiner reads them).
    answers : black-box scorers only (:mod:`confidently.scorers`): what each row's generated answers
        came to, and what they cost; None for the logprob scorer. There ``mass`` holds the answers'
        shares per label and ``other_mass`` the share that named no label.
    """

    labels: tuple[str, ...]
    mass: np.ndarray
    other_mass: np.ndarray
    truncated: np.ndarray
    uncovered_mass: np.ndarray | None = None
    hidden: np.ndarray | None = None
    answers: Answers | None = None

    def __len__(self) -> int:
        return int(self.mass.shape[0])

    @property
    def probs(self) -> np.ndarray:
        """Raw class probabilities: each label's share of the label mass, ``mass / mass.sum(1)``.

        A row whose label mass is zero (possible only with top-k servers) becomes uniform.
        """
        total = self.mass.sum(axis=1, keepdims=True)
        uniform = np.full_like(self.mass, 1.0 / self.mass.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, self.mass / np.where(total > 0, total, 1.0), uniform)

    @property
    def prediction(self) -> np.ndarray:
        """Index of the predicted label (argmax of class mass)."""
        return self.mass.argmax(axis=1)

    @property
    def label_may_be_hidden(self) -> np.ndarray:
        """bool (n_samples,): a top-k server left out enough mass to flip the prediction; all False when exact."""
        if self.uncovered_mass is None:
            return np.zeros(len(self), dtype=bool)
        return label_may_be_hidden(self.mass, self.uncovered_mass)

    @property
    def predicted_labels(self) -> list[str]:
        return [self.labels[i] for i in self.prediction]

    @property
    def confidence(self) -> np.ndarray:
        """Raw confidence: the predicted label's share of the label mass."""
        return self.probs.max(axis=1)

    def subset(self, indices) -> Scores:
        idx = np.asarray(indices, dtype=np.int64)
        return Scores(self.labels, self.mass[idx], self.other_mass[idx], self.truncated[idx],
                      None if self.uncovered_mass is None else self.uncovered_mass[idx],
                      None if self.hidden is None else self.hidden[idx],
                      None if self.answers is None else self.answers.subset(idx))

    @staticmethod
    def concat(parts: list[Scores]) -> Scores:
        if not parts:
            raise ValueError("no scores to concatenate")
        uncovered = [p.uncovered_mass for p in parts]
        hidden = [p.hidden for p in parts]
        answers = [p.answers for p in parts]
        return Scores(
            parts[0].labels,
            np.concatenate([p.mass for p in parts]),
            np.concatenate([p.other_mass for p in parts]),
            np.concatenate([p.truncated for p in parts]),
            None if any(u is None for u in uncovered) else np.concatenate(uncovered),
            None if any(h is None for h in hidden) else np.concatenate(hidden),
            None if any(a is None for a in answers) else Answers.concat(answers),
        )

    @staticmethod
    def ensemble(parts: list[Scores], *, keep_masses: bool = False) -> Scores:
        """One prompt ensemble's scores from each prompt's scores of the same texts (first prompt first).

        ``mass`` and ``other_mass`` are the prompts' means (the uncalibrated ensemble); ``truncated``
        holds when any prompt cut the text. With ``keep_masses`` every prompt's class masses are kept
        side by side in ``hidden`` (float32), what the ensemble's fitted combiner reads.
        """
        if not parts or len({len(p) for p in parts}) != 1:
            raise ValueError("an ensemble needs every prompt's scores of the same texts")
        uncovered = [p.uncovered_mass for p in parts]
        return Scores(
            parts[0].labels,
            np.mean([p.mass for p in parts], axis=0),
            np.mean([p.other_mass for p in parts], axis=0),
            np.any([p.truncated for p in parts], axis=0),
            None if any(u is None for u in uncovered) else np.mean(uncovered, axis=0),
            np.concatenate([p.mass for p in parts], axis=1).astype(np.float32) if keep_masses else None,
        )

    def to_frame(self):
        """A pandas DataFrame of the raw scores: ``raw_p_<label>``, ``mass_<label>``, other_mass, raw_prediction,
        raw_confidence, truncated, and for black-box scorers answer_outcome, answer_calls, answer_tokens,
        unusable_answers (calibrated columns come from :meth:`Decisions.to_frame`); never the hidden states."""
        import pandas as pd

        probs = self.probs
        columns: dict[str, object] = {}
        for j, label in enumerate(self.labels):
            columns[f"raw_p_{label}"] = probs[:, j]
        for j, label in enumerate(self.labels):
            columns[f"mass_{label}"] = self.mass[:, j]
        columns["other_mass"] = self.other_mass
        if self.uncovered_mass is not None:
            columns["uncovered_mass"] = self.uncovered_mass
            columns["label_may_be_hidden"] = self.label_may_be_hidden
        columns["raw_prediction"] = self.predicted_labels
        columns["raw_confidence"] = self.confidence
        columns["truncated"] = self.truncated
        if self.answers is not None:
            columns.update({"answer_outcome": self.answers.outcome, "answer_calls": self.answers.calls,
                            "answer_tokens": self.answers.tokens, "unusable_answers": self.answers.unusable})
        return pd.DataFrame(columns)

    @classmethod
    def from_frame(cls, frame, labels: tuple[str, ...]) -> Scores:
        """Inverse of :meth:`to_frame` (reads the ``mass_<label>`` columns)."""
        mass = np.stack([frame[f"mass_{label}"].to_numpy(dtype=np.float64) for label in labels], axis=1)
        uncovered = frame["uncovered_mass"].to_numpy(dtype=np.float64) if "uncovered_mass" in frame else None
        answers = None
        if "answer_outcome" in frame:
            answers = Answers(frame["answer_outcome"].to_numpy(dtype=object).astype(str),
                              *(frame[c].to_numpy(dtype=np.int64)
                                for c in ("answer_calls", "answer_tokens", "unusable_answers")))
        return cls(tuple(labels), mass, frame["other_mass"].to_numpy(dtype=np.float64),
                   frame["truncated"].to_numpy(dtype=bool), uncovered, answers=answers)


@dataclass(frozen=True)
class Prediction:
    """The classification of one text: the answer, the raw scores behind it, and the decision.

    Built only by :meth:`confidently.decision.decisions.Decisions.prediction`, so every path (Python API, CLI,
    server, SageMaker) fills it the same way.

    Attributes
    ----------
    text : the text as given.
    label, confidence : the answer: the most probable label and its probability, calibrated when
        ``calibrated`` is True, else the raw share of the label mass (then named "uncalibrated").
    calibrated : whether a calibrator produced ``label`` and ``confidence``.
    decision : ``"automate"`` or ``"review"`` from the decision policy (on ``confidence``); None without one.
        A ``truncated`` text is always ``"review"``.
    review_reason : why the text goes to review: ``"truncated"`` (cut to fit: the confidence is about part of
        it), ``"below_threshold"``, ``"no_threshold"`` or ``"set_not_single"``
        (:data:`~confidently.decision.decisions.REVIEW_REASONS`); None when automated or undecided.
    threshold, guarantee : the policy's threshold (None unless it decides) and what an automated answer
        promises, in words.
    decided_by : the rule behind ``decision``: ``"threshold"`` (the policy's threshold on ``confidence``)
        or ``"prediction_set"`` (automate when the set holds only ``label``); None without a decision.
    prediction_set : the labels the conformal prediction set keeps (task order); None when the bundle
        has no prediction sets (never invented).
    set_guarantee : what the prediction sets promise, in words; None without them.
    raw_label, raw_confidence, raw_probs : the model's own answer: the label with the most class mass
        and each label's share of the label mass (:attr:`Scores.probs`).
    calibrated_probs : calibrated class probabilities; None when uncalibrated.
    mass, other_mass : unnormalised label masses and the mass on tokens that mean no label.
    truncated : the text was cut to fit the context.
    uncovered_mass : top-k servers only: probability they did not return (None when exact).
    variants, top_tokens : the explanation (one-text ``classify`` only): per label the tokens that
        counted, and the most likely next tokens.
    features : float32 array: what a calibrator that reads more than class probabilities read for this
        text (:attr:`Scores.hidden`: the hidden state, or every prompt's class masses), which the server
        logs for recalibration; None otherwise. Never in :meth:`to_dict`.
    """

    text: str
    label: str
    confidence: float
    calibrated: bool
    decision: str | None
    threshold: float | None
    guarantee: str | None
    raw_label: str
    raw_confidence: float
    raw_probs: dict[str, float]
    calibrated_probs: dict[str, float] | None
    mass: dict[str, float]
    other_mass: float
    truncated: bool = False
    review_reason: str | None = None
    uncovered_mass: float | None = None
    decided_by: str | None = None
    prediction_set: list[str] | None = None
    set_guarantee: str | None = None
    variants: dict[str, list[TokenProb]] = field(default_factory=dict)
    top_tokens: list[TokenProb] = field(default_factory=list)
    features: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def probs(self) -> dict[str, float]:
        """The probabilities behind ``label``: calibrated when available, else raw."""
        return self.raw_probs if self.calibrated_probs is None else self.calibrated_probs

    @property
    def label_may_be_hidden(self) -> bool:
        """A top-k server left out enough mass (``uncovered_mass``) that another label could win."""
        if self.uncovered_mass is None:
            return False
        mass = np.array([list(self.mass.values())])
        return bool(label_may_be_hidden(mass, np.array([self.uncovered_mass]))[0])

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "label": self.label,
            "confidence": self.confidence,
            "calibrated": self.calibrated,
            "decision": self.decision,
            "review_reason": self.review_reason,
            "threshold": self.threshold,
            "guarantee": self.guarantee,
            "decided_by": self.decided_by,
            "prediction_set": self.prediction_set,
            "set_guarantee": self.set_guarantee,
            "raw_label": self.raw_label,
            "raw_confidence": self.raw_confidence,
            "raw_probs": self.raw_probs,
            "calibrated_probs": self.calibrated_probs,
            "mass": self.mass,
            "other_mass": self.other_mass,
            "uncovered_mass": self.uncovered_mass,
            "label_may_be_hidden": self.label_may_be_hidden,
            "truncated": self.truncated,
            "variants": {k: [t.to_dict() for t in v] for k, v in self.variants.items()},
            "top_tokens": [t.to_dict() for t in self.top_tokens],
        }
