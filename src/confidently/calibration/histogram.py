"""Histogram binning: the observed frequency of the class in each equal-mass score bin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from confidently.calibration.base import Interval, OneVsRestCalibrator
from confidently.calibration.numeric import laplace_bounds
from confidently.calibration.state import read_object, read_vector


class HistogramBinningCalibrator(OneVsRestCalibrator):
    """Histogram binning with equal-mass bins (Zadrozny & Elkan 2001).

    The scores are cut into ``bins`` bins holding about the same number of examples (the cut points
    are the ``j / bins`` quantiles of the training scores); every score in bin ``b`` is mapped to the
    fraction of positives among the training examples in that bin,

    .. math::
        q(s) = \\frac{\\sum_{i : s_i \\in B_b} t_i}{|B_b|}, \\quad s \\in B_b.

    Repeated quantiles (many tied scores) merge bins, and a bin left without training examples is
    merged into its neighbour, so every bin has an observed frequency. A bin whose ``m`` examples are
    all of one class would give exactly 0 or 1; it gives what ``m`` examples support instead,
    ``1 / (m + 2)`` or ``(m + 1) / (m + 2)`` (Laplace's rule of succession); other bins keep their
    observed frequency, which already lies between those bounds. Binary tasks use the positive-class
    probability; more classes are one-vs-rest and renormalised.

    Parameters
    ----------
    bins : int, default=10
        Number of equal-mass bins (fewer after merging).
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    classes : list of str or int, optional
        The label of each probability column (see :class:`~confidently.calibration.base.SupervisedCalibrator`).

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

    def __init__(self, *, bins: int = 10, min_samples: int = 20, classes: list[str] | list[int] | None = None):
        super().__init__(min_samples=min_samples, classes=classes)
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
        counts = _bin_counts(edges, score)
        low, high = laplace_bounds(counts)
        values = np.clip(np.bincount(index, weights=target, minlength=edges.size + 1) / counts, low, high)
        return {"edges": edges, "values": values}

    def _apply_map(self, params: Mapping[str, Any], score: np.ndarray) -> np.ndarray:
        return params["values"][np.searchsorted(params["edges"], score, side="right")]

    def _read_map(self, value: Any, where: str) -> dict[str, Any]:
        fitted = read_object(value, where, ("edges", "values"))
        edges = read_vector(fitted["edges"], f"{where}.edges", min_length=0, low=0.0, high=1.0, order="increasing")
        values = read_vector(fitted["values"], f"{where}.values", length=edges.size + 1, low=0.0, high=1.0)
        return {"edges": edges, "values": values}


def _bin_counts(edges: np.ndarray, score: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, score, side="right"), minlength=edges.size + 1)
