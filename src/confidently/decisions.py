"""The one decision path: raw class probabilities → calibrated probabilities → label, confidence, decision.

:func:`decide` is the only place this step is written; :class:`CalibratedClassifier` holds a
classifier with its calibrator and policy and calls it for every text. The Python API, ``classify``,
``score``, ``serve``, ``sagemaker classify``, ``evaluate`` and ``compare`` all go through here, so
the same text and bundle give the same answer everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from confidently.bundle import Bundle, read_bundle
from confidently.calibration.validation import check_probs
from confidently.errors import ArtifactError, ConfigError, DataError
from confidently.thresholds import DecisionPolicy
from confidently.types import Prediction, Scores, TokenProb

if TYPE_CHECKING:
    import pandas as pd

    from confidently.calibration import Calibrator
    from confidently.classifier import Classifier


@dataclass(frozen=True)
class Decisions:
    """Answers and decisions for a batch of texts, from raw and (optionally) calibrated probabilities.

    Attributes
    ----------
    labels : column order of the probabilities.
    raw_probs : array (n, k): each label's share of the label mass.
    calibrated_probs : array (n, k), or None when no calibrator was applied.
    policy : the decision policy, or None (then there is no decision).
    """

    labels: tuple[str, ...]
    raw_probs: np.ndarray
    calibrated_probs: np.ndarray | None
    policy: DecisionPolicy | None

    def __len__(self) -> int:
        return int(self.raw_probs.shape[0])

    @property
    def calibrated(self) -> bool:
        return self.calibrated_probs is not None

    @property
    def probs(self) -> np.ndarray:
        """The probabilities the answer comes from: calibrated when available, else raw."""
        return self.raw_probs if self.calibrated_probs is None else self.calibrated_probs

    @property
    def label_index(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def predicted_labels(self) -> list[str]:
        return [self.labels[i] for i in self.label_index]

    @property
    def confidence(self) -> np.ndarray:
        """The answer's probability (calibrated when available): what the policy's threshold applies to."""
        return self.probs.max(axis=1)

    @property
    def decision(self) -> np.ndarray | None:
        """``"automate"`` / ``"review"`` per text, or None without a policy."""
        if self.policy is None:
            return None
        return self.policy.decide(self.confidence) if len(self) else np.array([], dtype=str)

    @property
    def threshold(self) -> float | None:
        return None if self.policy is None else self.policy.threshold

    @property
    def guarantee(self) -> str | None:
        return None if self.policy is None else self.policy.guarantee

    def to_frame(self) -> pd.DataFrame:
        """The calibrated columns, to sit beside :meth:`Scores.to_frame`'s raw ones.

        ``calibrated_p_<label>``, ``calibrated_prediction`` and ``calibrated_confidence`` when a
        calibrator was applied; ``decision`` when there is a policy. Nothing when neither.
        """
        import pandas as pd

        columns: dict[str, object] = {}
        if self.calibrated_probs is not None:
            for j, label in enumerate(self.labels):
                columns[f"calibrated_p_{label}"] = self.calibrated_probs[:, j]
            columns["calibrated_prediction"] = self.predicted_labels
            columns["calibrated_confidence"] = self.confidence
        if self.policy is not None:
            columns["decision"] = self.decision
        return pd.DataFrame(columns, index=range(len(self)))

    def prediction(self, i: int, text: str, scores: Scores, *, variants: dict[str, list[TokenProb]] | None = None,
                   top_tokens: list[TokenProb] | None = None) -> Prediction:
        """Row ``i`` as a :class:`Prediction` (``scores`` holds the same rows' raw scores)."""
        labels, raw = self.labels, self.raw_probs[i]
        raw_index = int(scores.prediction[i])
        index = int(self.label_index[i])
        decision = self.decision
        return Prediction(
            text=text,
            label=labels[index],
            confidence=float(self.probs[i, index]),
            calibrated=self.calibrated,
            decision=None if decision is None else str(decision[i]),
            threshold=self.threshold,
            guarantee=self.guarantee,
            raw_label=labels[raw_index],
            raw_confidence=float(raw[raw_index]),
            raw_probs=dict(zip(labels, raw.tolist())),
            calibrated_probs=None if self.calibrated_probs is None else dict(zip(labels, self.calibrated_probs[i].tolist())),
            mass=dict(zip(labels, scores.mass[i].tolist())),
            other_mass=float(scores.other_mass[i]),
            truncated=bool(scores.truncated[i]),
            uncovered_mass=None if scores.uncovered_mass is None else float(scores.uncovered_mass[i]),
            variants=variants or {},
            top_tokens=top_tokens or [],
        )

    def predictions(self, texts: Sequence[str], scores: Scores) -> list[Prediction]:
        return [self.prediction(i, text, scores) for i, text in enumerate(texts)]


def decide(raw_probs: np.ndarray, *, labels: Sequence[str], calibrator: Calibrator | None = None,
           policy: DecisionPolicy | None = None, calibrated_probs: np.ndarray | None = None) -> Decisions:
    """Raw class probabilities → calibrated probabilities, label, confidence and decision.

    Parameters
    ----------
    raw_probs : array (n, k), rows summing to 1 (:attr:`Scores.probs`).
    labels : the k label names, in column order.
    calibrator : a fitted calibrator, or None to keep the raw probabilities.
    policy : the decision policy, applied to the answer's confidence; None for no decision.
    calibrated_probs : already calibrated probabilities (evaluation's out-of-fold scores) instead of
        ``calibrator``; give one or neither.
    """
    if calibrator is not None and calibrated_probs is not None:
        raise ConfigError("give a calibrator or calibrated probabilities, not both")
    raw = np.asarray(raw_probs, dtype=float)
    if raw.shape == (0, len(labels)):  # nothing to score (an empty input file)
        empty = None if calibrator is None and calibrated_probs is None else raw.copy()
        return Decisions(tuple(labels), raw, empty, policy)
    raw = check_probs(raw, n_classes=len(labels), name="raw_probs")
    if calibrator is not None:
        calibrated_probs = calibrator.predict_proba(raw)
    elif calibrated_probs is not None:
        calibrated_probs = check_probs(calibrated_probs, n_classes=len(labels), name="calibrated_probs")
        if calibrated_probs.shape != raw.shape:
            raise DataError(f"calibrated_probs has shape {calibrated_probs.shape}, raw_probs {raw.shape}")
    return Decisions(tuple(labels), raw, calibrated_probs, policy)


class CalibratedClassifier:
    """A classifier with its calibrator and decision policy: every answer calibrated and decided.

    Parameters
    ----------
    classifier : the :class:`~confidently.Classifier` producing raw scores.
    calibrator, policy : used as given (either may be None: uncalibrated, or no decision).
    bundle : a :class:`~confidently.bundle.Bundle` (or its folder) to take the calibrator and policy
        from; it is checked against ``classifier`` first (weights, adapter, task), and refused when
        fitted for another model or task.

    Examples
    --------
    >>> calibrated = CalibratedClassifier.load("runs/demo")  # doctest: +SKIP
    >>> p = calibrated.classify("I love this movie!")  # doctest: +SKIP
    >>> p.label, p.confidence, p.decision  # doctest: +SKIP
    """

    def __init__(self, classifier: Classifier, *, calibrator: Calibrator | None = None,
                 policy: DecisionPolicy | None = None, bundle: Bundle | str | Path | None = None):
        if bundle is not None:
            if calibrator is not None or policy is not None:
                raise ConfigError("give a bundle, or a calibrator and a policy, not both")
            bundle = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
            bundle.check(classifier)
            calibrator, policy = bundle.calibrator, bundle.policy
        if calibrator is not None and calibrator.n_classes_ != len(classifier.labels):
            raise ArtifactError(f"the calibrator was fitted on {calibrator.n_classes_} classes, the task has "
                                f"{len(classifier.labels)} ({', '.join(classifier.labels)})")
        self.classifier = classifier
        self.calibrator = calibrator
        self.policy = policy
        self.bundle = bundle

    @classmethod
    def load(cls, bundle: Bundle | str | Path, *, model: str | None = None, **classifier_options) -> CalibratedClassifier:
        """The classifier a bundle was fitted on, with the bundle applied.

        Loads the bundle's model (or ``model``) with its task, chat choice and scorer; an adapter bundle
        (written by ``finetune``) also loads its own adapter. ``classifier_options`` go to
        :class:`~confidently.Classifier` (``device``, ``dtype``, ``batch_size``, ``adapter``...).
        """
        from confidently.classifier import Classifier

        bundle = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
        options = {"backend": bundle.model.backend, "task": bundle.task, "chat": bundle.chat,
                   "scorer": bundle.scorer, **classifier_options}
        if bundle.is_adapter:
            options["adapter"] = str(bundle.folder)
        return cls(Classifier(model=model or bundle.model.name, **options), bundle=bundle)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    @property
    def calibrated(self) -> bool:
        return self.calibrator is not None

    def decide(self, raw_probs: np.ndarray) -> Decisions:
        """Raw class probabilities (n, k) → :class:`Decisions` with this classifier's calibrator and policy."""
        return decide(raw_probs, labels=self.labels, calibrator=self.calibrator, policy=self.policy)

    def decisions(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> tuple[Scores, Decisions]:
        """Score ``texts`` and decide: the raw :class:`Scores` and the :class:`Decisions` for them."""
        scores = self.classifier.score(texts, progress=progress)
        return scores, self.decide(scores.probs)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, calibrated when there is a calibrator, shape (n_texts, n_labels)."""
        return self.decisions(texts)[1].probs

    def predict(self, texts: Sequence[str]) -> list[str]:
        return self.decisions(texts)[1].predicted_labels

    def classify_many(self, texts: Sequence[str]) -> list[Prediction]:
        """One :class:`Prediction` per text, in order (scored in batches; no explanation)."""
        texts = list(texts)
        scores, decisions = self.decisions(texts)
        return decisions.predictions(texts, scores)

    def classify(self, text: str, *, top_k: int = 10) -> Prediction:
        """One text, explained: the answer and decision, each label's token variants, the top tokens."""
        scores, variants, top = self.classifier.explain(text, top_k=top_k)
        return self.decide(scores.probs).prediction(0, text, scores, variants=variants, top_tokens=top)
