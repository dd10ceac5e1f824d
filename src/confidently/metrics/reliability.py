"""Reliability tables: per-bin count, mean confidence and accuracy, top-label and per class
(the binning behind ECE, MCE and the reliability diagram)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_confidence, check_correct, check_labels, check_probs
from confidently.metrics.functions import bin_index, bin_totals, check_binning
from confidently.metrics.results import BinningScheme, ReliabilityBins


def reliability_bins(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int | None = None, scheme: BinningScheme = "equal_width"
) -> ReliabilityBins:
    """Per-bin count, mean confidence and accuracy: the binning behind ECE, MCE and the diagram.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Top-label confidence in [0, 1].
    correct : array-like of shape (n_samples,)
        Whether each prediction is correct.
    n_bins : int, optional
        Defaults to 20 equal-width bins or 15 equal-mass bins.
    scheme : {"equal_width", "equal_mass"}
        Equal-width bins ``[b/B, (b+1)/B)``; or equal-mass bins, the sorted confidences cut into
        ``B`` groups whose sizes differ by at most one.
    """
    n_bins, scheme = check_binning(n_bins, scheme)
    conf = check_confidence(confidence)
    hits = check_correct(correct, n_samples=conf.size)
    count, conf_sum, correct_sum = (t[0] for t in bin_totals(conf[None], hits[None], n_bins, scheme))
    filled = count > 0
    safe = np.where(filled, count, 1)
    if scheme == "equal_width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        lower, upper = edges[:-1], edges[1:]
    else:
        index = bin_index(conf[None], n_bins, scheme)[0]
        lower, upper = np.full(n_bins, np.inf), np.full(n_bins, -np.inf)
        np.minimum.at(lower, index, conf)
        np.maximum.at(upper, index, conf)
        lower, upper = np.where(filled, lower, np.nan), np.where(filled, upper, np.nan)
    return ReliabilityBins(
        lower=lower,
        upper=upper,
        count=count.astype(int),
        mean_confidence=np.where(filled, conf_sum / safe, np.nan),
        accuracy=np.where(filled, correct_sum / safe, np.nan),
        n_bins=n_bins,
        scheme=scheme,
        n=int(conf.size),
    )


def classwise_reliability(
    probs: ArrayLike, y: ArrayLike, n_bins: int | None = None, scheme: BinningScheme = "equal_width"
) -> list[ReliabilityBins]:
    """One :func:`reliability_bins` table per class ``k``: ``p_ik`` against ``1[y_i = k]``.

    In each table ``mean_confidence`` is the class's mean probability in the bin and ``accuracy``
    the share of the bin's rows labelled with the class; the mean of the tables' ``ece`` is the
    sample value of :func:`classwise_calibration_error`.
    """
    probs = check_probs(probs)
    y = check_labels(y, n_samples=probs.shape[0], n_classes=probs.shape[1])
    return [reliability_bins(probs[:, k], y == k, n_bins, scheme) for k in range(probs.shape[1])]
