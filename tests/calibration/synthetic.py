"""Synthetic scores with a known miscalibration, shared by the calibration tests.

A plain module (not conftest) so that tests import it by a name no other test folder uses.

The true probability comes from a logistic model with logits ``z``; the labels are drawn from it; the
"raw model" reports ``sigmoid(3 z)`` (binary) or ``softmax(3 z)`` (multiclass): the right ranking,
three times over-confident. A calibrator should learn to undo the factor 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

SHARPEN = 3.0


@dataclass(frozen=True)
class Split:
    train_probs: np.ndarray
    train_y: np.ndarray
    test_probs: np.ndarray
    test_y: np.ndarray


def make_scores(n: int, n_classes: int, seed: int, sharpen: float = SHARPEN) -> tuple[np.ndarray, np.ndarray]:
    """``(raw_probs, y)``: labels drawn from softmax(z), raw probabilities softmax(sharpen * z)."""
    rng = np.random.default_rng(seed)
    if n_classes == 2:
        z = np.column_stack([np.zeros(n), rng.normal(0.0, 1.5, n)])
    else:
        z = rng.normal(0.0, 1.2, (n, n_classes))
    true = softmax(z, axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(true, axis=1)).sum(axis=1)
    return softmax(sharpen * z, axis=1), y


def make_split(n_classes: int, n: int = 3000, seed: int = 0) -> Split:
    probs, y = make_scores(2 * n, n_classes, seed)
    return Split(probs[:n], y[:n], probs[n:], y[n:])
