"""Prompt ensembles: several prompts' class masses combined by a fitted multinomial logistic.

Each prompt (another template, other label words, a few-shot prompt) gives every text a class mass per
label; the combiner is a multinomial logistic regression on the logs of all of them, ``(n, prompts *
classes)`` features, standardised and L2-regularised with the strength chosen by cross-validation:
the model of :class:`~confidently.calibration.probe.HiddenStateProbe` on other features. Fitted by
log-loss, it is also the calibrator; its scores on the calibration rows come out-of-fold
(:func:`cross_fit_ensemble`), so a threshold certified on them holds for it as for any calibrator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from confidently.calibration.numeric import EPS
from confidently.calibration.probe import HiddenStateProbe, cross_fit_probe
from confidently.errors import CalibrationError


def ensemble_features(masses: Sequence[np.ndarray]) -> np.ndarray:
    """``log`` of every prompt's class masses side by side, shape (n, prompts * classes) (masses clipped at 1e-12)."""
    if not masses:
        raise CalibrationError("an ensemble needs the class masses of at least one prompt")
    rows = {m.shape[0] for m in masses}
    if len(rows) != 1:
        raise CalibrationError(f"the prompts scored different numbers of rows: {sorted(rows)}")
    return np.log(np.clip(np.concatenate([np.asarray(m, dtype=float) for m in masses], axis=1), EPS, None))


def fit_ensemble(masses: Sequence[np.ndarray], y, *, n_classes: int, n_splits: int = 5,
                 seed: int = 0) -> HiddenStateProbe:
    """The combiner fitted on every labelled row (what ships)."""
    return HiddenStateProbe(n_splits=n_splits, seed=seed).fit(ensemble_features(masses), y, n_classes=n_classes)


def cross_fit_ensemble(masses: Sequence[np.ndarray], y, *, n_classes: int, n_splits: int = 5,
                       seed: int = 0) -> np.ndarray:
    """Out-of-fold combined probabilities (n, k): each row from a combiner that never saw it."""
    return cross_fit_probe(ensemble_features(masses), y, n_classes=n_classes, n_splits=n_splits, seed=seed)
