"""Histogram binning: the observed frequency of the class in each equal-mass score bin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from confidently.calibration.base import Interval, OneVsRestCalibrator


class HistogramBinningCalibrator(OneVsRestCalibrator):
    """Histogram binning with equal-mass bins (Zadrozny & Elkan 2001).

    The scores are cut into ``bins`` bins holding about the same number of examples (the cut points
    are the ``j / bins`` quantiles of the training scores); every score in bin ``b`` is mapped to the
    fraction of positives among the training examples in that bin,

    .. math::
        q(s) = \\frac{\\sum_{i : s_i \\in B_b} t_i}{|B_b|}, \\quad s \\in B_b.

    Repeated quantiles (many tied scores) merge bins, and a bin left without training examples is
    merged into its neighbour, so every bin has an observed frequency. Binary tasks use the
    positive-class probability; more classes are one-vs-rest and renormalised.

    Parameters
    ----------
    bins : int, default=10
        Number of equal-mass bins (fewer after merging).
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.

    Attributes
    ----------
    maps_ : list of dict
        Per score column ``{"edges": inner cut points, "values": frequency per bin}``; a score ``s``
        falls in bin ``searchsorted(edges, s, side="right")``.
    """

    name = "histogram"
    _constraints: ClassVar[dict[str, Interval]] = {
        **OneVsRestCalibrator._constraints, "bins": Interval(int, 1),
    }

    def __init__(self, *, bins: int = 10, min_samples: int = 20):
        super().__init__(min_samples=min_samples)
        self.bins = bins

    def _fit_map(self, score: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        edges = np.unique(np.quantile(score, np.arange(1, self.bins) / self.bins))
        counts = _bin_counts(edges, score)
        # drop the lower edge of each empty bin (merging it into the bin below), then the first
        # edge if bin 0 is still empty (merging it into bin 1, which now has examples)
        edges = edges[counts[1:] > 0]
        if edges.size and not np.any(score < edges[0]):
            edges = edges[1:]
        index = np.searchsorted(edges, score, side="right")
        values = np.bincount(index, weights=target, minlength=edges.size + 1) / _bin_counts(edges, score)
        return {"edges": edges, "values": values}

    def _apply_map(self, params: Mapping[str, Any], score: np.ndarray) -> np.ndarray:
        return params["values"][np.searchsorted(params["edges"], score, side="right")]


def _bin_counts(edges: np.ndarray, score: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, score, side="right"), minlength=edges.size + 1)
