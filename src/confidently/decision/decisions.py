"""The one decision path: raw class probabilities → calibrated probabilities → label, confidence,
prediction set, decision.

:func:`decide` is the only place this step is written;
:class:`~confidently.decision.calibrated.CalibratedClassifier` holds a classifier with its calibrator and policy
and calls it for every text. The Python API, ``classify``,
``score``, ``serve``, ``sagemaker classify``, ``evaluate`` and ``compare`` all go through here, so
the same text and bundle give the same answer everywhere.

Two decision rules (:data:`~confidently.bundle.bundle.DECISION_RULES`): ``"threshold"`` automates when the
answer's confidence reaches the policy's threshold (Learn-Then-Test); ``"prediction_set"`` automates
when the conformal prediction set holds only the answer (:func:`~confidently.decision.conformal.decide_by_sets`).
Under either rule a text that was cut to fit (``Scores.truncated``) goes to review: its confidence is
about the part the model saw, which the guarantee does not cover. There is no opt-out: to automate long
texts, score them whole (raise ``--max-text-tokens``) so the confidence is about the whole text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from confidently.calibration.validation import check_probs
from confidently.decision.conformal import ConformalPredictor, decide_by_sets, set_labels
from confidently.errors import ArtifactError, ConfigError, DataError
from confidently.decision.policy import DecisionPolicy
from confidently.types import Prediction, Scores, TokenProb

if TYPE_CHECKING:
    import pandas as pd

    from confidently.calibration import Calibrator
    from confidently.calibration.probe import HiddenStateProbe


#: How answers are decided: the policy's threshold on confidence, or single-label prediction sets.
DECISION_RULES = ("threshold", "prediction_set")
#: Why a text went to review (:attr:`Decisions.review_reason`): it was cut to fit; its confidence is below the
#: threshold; the policy certified no threshold; its prediction set holds other labels than the answer alone.
REVIEW_REASONS = ("truncated", "below_threshold", "no_threshold", "set_not_single")


@dataclass(frozen=True)
class Decisions:
    """Answers and decisions for a batch of texts, from raw and (optionally) calibrated probabilities.

    Attributes
    ----------
    labels : column order of the probabilities.
    raw_probs : array (n, k): each label's share of the label mass.
    calibrated_probs : array (n, k), or None when no calibrator was applied.
    policy : the decision policy, or None (then the threshold rule makes no decision).
    sets : bool array (n, k), each row's conformal prediction set on :attr:`probs`; None without one.
    prediction_sets : the conformal predictor the sets come from, or None.
    rule : ``"threshold"`` (the policy decides) or ``"prediction_set"`` (single-label sets are automated).
    truncated : bool array (n,): the text was cut to fit; such a text is never automated. None: none was.
    """

    labels: tuple[str, ...]
    raw_probs: np.ndarray
    calibrated_probs: np.ndarray | None
    policy: DecisionPolicy | None
    sets: np.ndarray | None = None
    prediction_sets: ConformalPredictor | None = None
    rule: str = "threshold"
    truncated: np.ndarray | None = None

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
        """``"automate"`` / ``"review"`` per text by :attr:`rule`, or None when nothing decides."""
        if self.decided_by is None:
            return None
        if not len(self):
            return np.array([], dtype=str)
        if self.rule == "prediction_set":
            decided = decide_by_sets(self.sets, self.probs)
        else:
            decided = self.policy.decide(self.confidence)
        return decided if self.truncated is None else np.where(self.truncated, "review", decided)

    @property
    def review_reason(self) -> np.ndarray | None:
        """Per text, why it goes to review (one of :data:`REVIEW_REASONS`), None where it is automated; an
        object array, or None when nothing decides. A cut text's reason is ``"truncated"`` whatever else."""
        decision = self.decision
        if decision is None:
            return None
        if self.rule == "prediction_set":
            reason = "set_not_single"
        else:
            reason = "no_threshold" if self.policy.threshold is None else "below_threshold"
        reasons = np.where(decision == "review", reason, None).astype(object)
        if self.truncated is not None:
            reasons[self.truncated] = "truncated"
        return reasons

    @property
    def decided_by(self) -> str | None:
        """The rule that makes the decision: ``"threshold"``, ``"prediction_set"``, or None (no policy)."""
        return self.rule if self.rule == "prediction_set" or self.policy is not None else None

    @property
    def threshold(self) -> float | None:
        """The policy's threshold when it decides; None otherwise."""
        return self.policy.threshold if self.decided_by == "threshold" else None

    @property
    def guarantee(self) -> str | None:
        """What an ``automate`` decision promises, in words (the deciding rule's)."""
        if self.decided_by == "prediction_set":
            return self.prediction_sets.decision_guarantee
        return None if self.decided_by is None else self.policy.guarantee

    @property
    def set_guarantee(self) -> str | None:
        """What the prediction sets promise, in words; None without sets."""
        return None if self.sets is None else self.prediction_sets.guarantee

    @property
    def set_lists(self) -> list[list[str]] | None:
        """Each row's prediction set as label names (task order), or None without sets."""
        return None if self.sets is None else set_labels(self.sets, self.labels)

    def to_frame(self) -> pd.DataFrame:
        """The calibrated columns, to sit beside :meth:`Scores.to_frame`'s raw ones.

        ``calibrated_p_<label>``, ``calibrated_prediction`` and ``calibrated_confidence`` when a
        calibrator was applied; ``prediction_set`` (a list of labels) and ``prediction_set_size`` when
        there are prediction sets; ``decision`` and ``review_reason`` (empty for automated rows) when a rule
        decides. Nothing when none of these.
        """
        import pandas as pd

        columns: dict[str, object] = {}
        if self.calibrated_probs is not None:
            for j, label in enumerate(self.labels):
                columns[f"calibrated_p_{label}"] = self.calibrated_probs[:, j]
            columns["calibrated_prediction"] = self.predicted_labels
            columns["calibrated_confidence"] = self.confidence
        if self.sets is not None:
            columns["prediction_set"] = self.set_lists
            columns["prediction_set_size"] = self.sets.sum(axis=1)
        if self.decided_by is not None:
            columns["decision"] = self.decision
            columns["review_reason"] = self.review_reason
        return pd.DataFrame(columns, index=range(len(self)))

    def prediction(self, i: int, text: str, scores: Scores, *, variants: dict[str, list[TokenProb]] | None = None,
                   top_tokens: list[TokenProb] | None = None) -> Prediction:
        """Row ``i`` as a :class:`Prediction` (``scores`` holds the same rows' raw scores)."""
        labels, raw = self.labels, self.raw_probs[i]
        raw_index = int(scores.prediction[i])
        index = int(self.label_index[i])
        decision, reasons = self.decision, self.review_reason
        return Prediction(
            text=text,
            label=labels[index],
            confidence=float(self.probs[i, index]),
            calibrated=self.calibrated,
            decision=None if decision is None else str(decision[i]),
            review_reason=None if reasons is None else reasons[i],
            threshold=self.threshold,
            guarantee=self.guarantee,
            decided_by=self.decided_by,
            prediction_set=None if self.sets is None else [labels[j] for j in np.flatnonzero(self.sets[i])],
            set_guarantee=self.set_guarantee,
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
            features=None if scores.hidden is None else scores.hidden[i],
        )

    def predictions(self, texts: Sequence[str], scores: Scores) -> list[Prediction]:
        return [self.prediction(i, text, scores) for i, text in enumerate(texts)]


def decide(raw_probs: np.ndarray, *, labels: Sequence[str], calibrator: Calibrator | HiddenStateProbe | None = None,
           policy: DecisionPolicy | None = None, calibrated_probs: np.ndarray | None = None,
           hidden: np.ndarray | None = None, prediction_sets: ConformalPredictor | None = None,
           groups: Sequence | None = None, rule: str = "threshold",
           truncated: Sequence[bool] | np.ndarray | None = None) -> Decisions:
    """Raw class probabilities → calibrated probabilities, label, confidence, prediction set and decision.

    Parameters
    ----------
    raw_probs : array (n, k), rows summing to 1 (:attr:`Scores.probs`).
    labels : the k label names, in column order.
    calibrator : a fitted calibrator, or None to keep the raw probabilities; a
        :class:`~confidently.calibration.probe.HiddenStateProbe` reads ``hidden`` instead of ``raw_probs``.
    policy : the decision policy, applied to the answer's confidence; None for no decision.
    calibrated_probs : already calibrated probabilities (evaluation's out-of-fold scores) instead of
        ``calibrator``; give one or neither.
    hidden : array (n, d): the final hidden states of the same rows (:attr:`Scores.hidden`), which a
        probe needs.
    prediction_sets : a fitted :class:`~confidently.decision.conformal.ConformalPredictor`, applied to the
        answer's probabilities (calibrated when available); None for no sets.
    groups : one value per row of the predictor's group column, for sets fitted per slice
        (``condition_on="group"``); without them such sets are left out (None), never guessed.
    rule : ``"threshold"`` (the policy decides) or ``"prediction_set"`` (automate when the set holds
        only the answer; needs ``prediction_sets``, and ``groups`` for per-slice sets).
    truncated : one bool per row (:attr:`Scores.truncated`): the text was cut to fit. A cut text is decided
        ``review`` (reason ``"truncated"``) by either rule; None: no text was cut.
    """
    if calibrator is not None and calibrated_probs is not None:
        raise ConfigError("give a calibrator or calibrated probabilities, not both")
    check_rule(rule, prediction_sets, n_classes=len(labels))
    raw = np.asarray(raw_probs, dtype=float)
    truncated = _check_truncated(truncated, len(raw))
    if raw.shape == (0, len(labels)):  # nothing to score (an empty input file)
        empty = None if calibrator is None and calibrated_probs is None else raw.copy()
        sets = None if prediction_sets is None else np.zeros(raw.shape, dtype=bool)
        return Decisions(tuple(labels), raw, empty, policy, sets, prediction_sets, rule)
    raw = check_probs(raw, n_classes=len(labels), name="raw_probs")
    if calibrator is not None and reads_hidden(calibrator):
        if hidden is None:
            raise ConfigError("the calibrator is a hidden-state probe: it needs the texts' hidden states (score "
                              "them with hidden=True)")
        calibrated_probs = calibrator.predict_proba(hidden)
        if calibrated_probs.shape != raw.shape:
            raise DataError(f"the probe gave {calibrated_probs.shape[0]} rows for {raw.shape[0]} texts")
    elif calibrator is not None:
        calibrated_probs = calibrator.predict_proba(raw)
    elif calibrated_probs is not None:
        calibrated_probs = check_probs(calibrated_probs, n_classes=len(labels), name="calibrated_probs")
        if calibrated_probs.shape != raw.shape:
            raise DataError(f"calibrated_probs has shape {calibrated_probs.shape}, raw_probs {raw.shape}")
    sets = None
    if prediction_sets is not None and (prediction_sets.condition_on != "group" or groups is not None):
        sets = prediction_sets.predict_set(raw if calibrated_probs is None else calibrated_probs, groups=groups)
    elif rule == "prediction_set":
        raise DataError(f"the decision rule 'prediction_set' uses sets fitted per "
                        f"{prediction_sets.group_column or 'group'}: give each text's "
                        f"{prediction_sets.group_column or 'group'} value")
    return Decisions(tuple(labels), raw, calibrated_probs, policy, sets, prediction_sets, rule, truncated)


def _check_truncated(truncated, n: int) -> np.ndarray | None:
    """``truncated`` as a bool array of ``n`` rows (None stays None); anything else is refused."""
    if truncated is None:
        return None
    flags = np.asarray(truncated)
    if flags.shape != (n,) or (flags.size and flags.dtype != bool):
        raise DataError(f"truncated must be {n} true/false values, one per row; got {flags.dtype} of shape "
                        f"{flags.shape}")
    return flags.astype(bool)


def check_rule(rule: str, prediction_sets: ConformalPredictor | None, *, n_classes: int) -> None:
    """Refuse an unknown rule, the set rule without sets, and sets fitted for another label count."""
    if rule not in DECISION_RULES:
        raise ConfigError(f"decision rule must be one of {', '.join(DECISION_RULES)}; got {rule!r}")
    if rule == "prediction_set" and prediction_sets is None:
        raise ConfigError("the decision rule 'prediction_set' needs prediction sets: a bundle written by "
                          "`confidently evaluate` or `confidently finetune` carries them (conformal.json)")
    if prediction_sets is not None and prediction_sets.n_classes_ != n_classes:
        raise ArtifactError(f"the prediction sets were fitted on {prediction_sets.n_classes_} classes, the task "
                            f"has {n_classes}")


def reads_hidden(calibrator) -> bool:
    """Whether ``calibrator`` is applied to hidden states (a probe) rather than to class probabilities."""
    return bool(getattr(calibrator, "reads_hidden", False))
