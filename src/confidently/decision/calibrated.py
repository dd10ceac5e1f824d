"""A classifier with its calibration bundle applied: every answer calibrated and decided.

:class:`CalibratedClassifier` scores texts with a :class:`~confidently.Classifier` and hands the raw
class probabilities to :func:`confidently.decision.decisions.decide`, the one decision path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from confidently.bundle.bundle import Bundle, read_bundle
from confidently.bundle.versions import latest_version
from confidently.scoring.classifier import Classifier
from confidently.decision.conformal import ConformalPredictor
from confidently.decision.decisions import Decisions, check_rule, decide, reads_hidden
from confidently.errors import ArtifactError, ConfigError
from confidently.decision.policy import DecisionPolicy
from confidently.types import Prediction, Scores

if TYPE_CHECKING:
    from confidently.calibration import Calibrator


class CalibratedClassifier:
    """A classifier with its calibrator and decision policy: every answer calibrated and decided.

    Parameters
    ----------
    classifier : the :class:`~confidently.Classifier` producing raw scores.
    calibrator, policy : used as given (either may be None: uncalibrated, or no decision).
    prediction_sets : a fitted :class:`~confidently.decision.conformal.ConformalPredictor` (None: no sets).
    bundle : a :class:`~confidently.bundle.bundle.Bundle` (or its folder) to take the calibrator, policy,
        prediction sets and decision rule from; it is checked against ``classifier`` first (weights,
        adapter, task), and refused when fitted for another model or task. A folder gives its newest
        recalibrated version (``versions/vN``), the one ``serve`` applies, so both answer alike.
    decision_rule : ``"threshold"`` or ``"prediction_set"``; default: the bundle's (``"threshold"``
        without a bundle).

    Examples
    --------
    >>> calibrated = CalibratedClassifier.load("runs/demo")  # doctest: +SKIP
    >>> p = calibrated.classify("I love this movie!")  # doctest: +SKIP
    >>> p.label, p.confidence, p.decision, p.prediction_set  # doctest: +SKIP
    """

    def __init__(self, classifier: Classifier, *, calibrator: Calibrator | None = None,
                 policy: DecisionPolicy | None = None, prediction_sets: ConformalPredictor | None = None,
                 bundle: Bundle | str | Path | None = None, decision_rule: str | None = None):
        if bundle is not None:
            if calibrator is not None or policy is not None or prediction_sets is not None:
                raise ConfigError("give a bundle, or a calibrator, policy and prediction sets, not both")
            bundle = bundle if isinstance(bundle, Bundle) else latest_version(bundle).bundle
            bundle.check(classifier)
            calibrator, policy, prediction_sets = bundle.calibrator, bundle.policy, bundle.prediction_sets
            decision_rule = decision_rule or bundle.decision_rule
        decision_rule = decision_rule or "threshold"
        if calibrator is not None and calibrator.n_classes_ != len(classifier.labels):
            raise ArtifactError(f"the calibrator was fitted on {calibrator.n_classes_} classes, the task has "
                                f"{len(classifier.labels)} ({', '.join(classifier.labels)})")
        check_rule(decision_rule, prediction_sets, n_classes=len(classifier.labels))
        self.classifier = classifier
        self.calibrator = calibrator
        self.policy = policy
        self.prediction_sets = prediction_sets
        self.decision_rule = decision_rule
        self.bundle = bundle

    @classmethod
    def from_bundle(cls, classifier: Classifier, bundle: Bundle, *, decision_rule: str | None = None,
                    checked: bool = True) -> CalibratedClassifier:
        """``classifier`` with ``bundle`` applied; ``checked=False`` skips the model check (an adapter
        not loaded yet, or a remote endpoint whose weights cannot be hashed here)."""
        if checked:
            return cls(classifier, bundle=bundle, decision_rule=decision_rule)
        applied = cls(classifier, calibrator=bundle.calibrator, policy=bundle.policy,
                      prediction_sets=bundle.prediction_sets, decision_rule=decision_rule or bundle.decision_rule)
        applied.bundle = bundle  # what was applied, for messages (sets_note), though unchecked
        return applied

    @classmethod
    def load(cls, bundle: Bundle | str | Path, *, model: str | None = None, **classifier_options) -> CalibratedClassifier:
        """The classifier a bundle was fitted on, with the bundle applied.

        Loads the bundle's model (or ``model``) with its task, chat choice and scorer; an adapter bundle
        (written by ``finetune``) also loads its own adapter. A folder is applied at its newest
        recalibrated version, as ``serve`` applies it. ``classifier_options`` go to
        :class:`~confidently.Classifier` (``device``, ``dtype``, ``batch_size``, ``adapter``...).
        """
        root = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
        applied = bundle if isinstance(bundle, Bundle) else latest_version(root.folder, root).bundle
        options = {"backend": root.model.backend, "task": root.task, "chat": root.chat,
                   "scorer": root.scorer, **classifier_options}
        if root.is_adapter:  # the weights live in the folder itself; its versions hold calibration only
            options["adapter"] = str(root.folder)
        return cls(Classifier(model=model or root.model.name, **options), bundle=applied)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    @property
    def calibrated(self) -> bool:
        return self.calibrator is not None

    @property
    def rule(self) -> Decisions:
        """No rows, decided: its ``decided_by``, ``threshold``, ``guarantee`` and ``set_guarantee`` say how
        every answer of this classifier is decided."""
        return self.decide(np.zeros((0, len(self.labels))))

    @property
    def reads_hidden(self) -> bool:
        """The calibrator is a hidden-state probe: texts are scored with their hidden states."""
        return reads_hidden(self.calibrator)

    @property
    def decides_per_slice(self) -> str | None:
        """The data column whose value every text's decision needs (the rule decides by prediction sets fitted
        per slice of it); None when a decision needs the text alone."""
        sets = self.prediction_sets
        if self.decision_rule == "prediction_set" and sets.condition_on == "group":
            return sets.group_column or "group"
        return None

    @property
    def sets_note(self) -> str | None:
        """Why answers come without a prediction set; None when the sets need nothing more."""
        if self.prediction_sets is not None:
            column = self.prediction_sets.group_column or "group"
            return None if self.prediction_sets.condition_on != "group" else (
                f"prediction sets are fitted per {column}: they need each text's {column} value (a {column!r} "
                "column when scoring a file)")
        if self.bundle is None:
            return "no prediction sets: pass a calibration bundle (--calibration DIR) that carries them"
        if "parent_version" in self.bundle.fitted_on:  # a recalibrated version (bundle.versions)
            return (f"no prediction sets: the recalibrated version {self.bundle.folder} carries none (recalibration "
                    "could not refit its bundle's sets, which were fitted per slice, or predates refitting them); "
                    "re-run `confidently evaluate` to fit them again")
        return (f"no prediction sets: the bundle {self.bundle.folder} carries none (written before prediction "
                "sets existed); re-run `confidently evaluate` to add them")

    def decide(self, raw_probs: np.ndarray, hidden: np.ndarray | None = None, *,
               groups: Sequence | None = None, truncated: Sequence[bool] | np.ndarray | None = None) -> Decisions:
        """Raw class probabilities (n, k) (and, for a probe, the hidden states) → :class:`Decisions` with this
        classifier's calibrator, policy, prediction sets and decision rule (``groups``: values of the sets'
        group column, if per slice; ``truncated``: which texts were cut, and so go to review)."""
        return decide(raw_probs, labels=self.labels, calibrator=self.calibrator, policy=self.policy, hidden=hidden,
                      prediction_sets=self.prediction_sets, groups=groups, rule=self.decision_rule,
                      truncated=truncated)

    def decide_scores(self, scores: Scores, *, groups: Sequence | None = None) -> Decisions:
        """:meth:`decide` on a batch's :class:`Scores`: its raw probabilities, hidden states and truncation flags
        (how every path that scores texts decides them)."""
        return self.decide(scores.probs, scores.hidden, groups=groups, truncated=scores.truncated)

    def decisions(self, texts: Sequence[str], *, groups: Sequence | None = None,
                  progress: Callable[[int], None] | None = None) -> tuple[Scores, Decisions]:
        """Score ``texts`` and decide: the raw :class:`Scores` and the :class:`Decisions` for them."""
        scores = self.classifier.score(texts, progress=progress, hidden=self.reads_hidden)
        return scores, self.decide_scores(scores, groups=groups)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, calibrated when there is a calibrator, shape (n_texts, n_labels)."""
        return self.decisions(texts)[1].probs

    def predict(self, texts: Sequence[str]) -> list[str]:
        return self.decisions(texts)[1].predicted_labels

    def classify_many(self, texts: Sequence[str], *, groups: Sequence | None = None) -> list[Prediction]:
        """One :class:`Prediction` per text, in order (scored in batches; no explanation)."""
        texts = list(texts)
        scores, decisions = self.decisions(texts, groups=groups)
        return decisions.predictions(texts, scores)

    def classify(self, text: str, *, top_k: int = 10, group: object | None = None) -> Prediction:
        """One text, explained: the answer, prediction set and decision, each label's token variants, the
        top tokens (``group``: the text's value of the sets' group column, if they are per slice)."""
        scores, variants, top = self.classifier.explain(text, top_k=top_k, hidden=self.reads_hidden)
        groups = None if group is None else [group]
        return self.decide_scores(scores, groups=groups).prediction(0, text, scores, variants=variants, top_tokens=top)
