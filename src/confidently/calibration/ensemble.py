"""Prompt ensembles: several prompts' class masses combined by a fitted multinomial logistic.

Each prompt (another template, other label words, a few-shot prompt) gives every text a class mass per
label; the classifier keeps them side by side, ``(n, prompts * classes)`` (:meth:`confidently.types.Scores.ensemble`).
The combiner is a multinomial logistic regression on their logs, standardised and L2-regularised
with the strength chosen by cross-validation: the model of
:class:`~confidently.calibration.probe.HiddenStateProbe` on other features, and applied the same way
(it reads the rows' ``hidden`` features in :func:`~confidently.decision.decisions.decide`). Fitted by log-loss,
it is also the calibrator; its scores on the calibration rows come out-of-fold
(:func:`cross_fit_ensemble`), so a threshold certified on them holds for it as for any calibrator.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from confidently.calibration.numeric import EPS
from confidently.calibration.probe import HiddenStateProbe, check_hidden, cross_fit_probe


def ensemble_features(masses: Any) -> np.ndarray:
    """``log`` of every prompt's class masses, shape (n, prompts * classes) (masses clipped at 1e-12)."""
    return np.log(np.clip(check_hidden(masses, name="the prompts' class masses"), EPS, None))


class PromptCombiner(HiddenStateProbe):
    """The combiner of a prompt ensemble: a :class:`HiddenStateProbe` on the log class masses of every prompt.

    ``fit`` and ``predict_proba`` take the prompts' class masses side by side, (n, prompts * classes),
    as :meth:`Scores.ensemble` keeps them; saved and checked like the probe (``method: "ensemble"``).
    """

    name: ClassVar[str] = "ensemble"

    def fit(self, hidden: Any, y: Any, *, n_classes: int) -> PromptCombiner:
        return super().fit(ensemble_features(hidden), y, n_classes=n_classes)

    def predict_proba(self, hidden: Any) -> np.ndarray:
        return super().predict_proba(ensemble_features(hidden))


def cross_fit_ensemble(masses: Any, y, *, n_classes: int, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold combined probabilities (n, k): each row from a combiner that never saw it."""
    return cross_fit_probe(ensemble_features(masses), y, n_classes=n_classes, n_splits=n_splits, seed=seed)
