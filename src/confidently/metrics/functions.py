"""Batch-first metric functions and the table that names them.

Every metric is written once, *batch-first*: it takes arrays with a leading resample axis
(``probs`` of shape (r, n, k), ``y`` of shape (r, n)) and returns r values. The point estimate is
that function on the data itself (r = 1); the bootstrap (:mod:`confidently.metrics.bootstrap`)
runs it on all resampled index sets at once. :func:`metric_function` hands them out by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.stats import rankdata

from confidently.errors import DataError
from confidently.metrics.results import BatchMetric, BinningScheme, IntervalMethod

#: Probabilities are floored here before the log in the NLL, so one confident mistake costs at most
#: ``-ln 1e-12 ≈ 27.6`` nats instead of infinity.
NLL_FLOOR = 1e-12


def _top_label(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs.max(axis=-1), probs.argmax(axis=-1) == y


def bin_index(confidence: np.ndarray, n_bins: int, scheme: str) -> np.ndarray:
    """Bin of each confidence, shape (r, n).

    Equal-width: bin ``b`` holds ``[b/B, (b+1)/B)`` (1.0 goes to the last bin). Equal-mass: the
    confidences of each row are sorted and the ``i``-th smallest goes to bin ``floor(i B / n)``, so
    bin sizes differ by at most one; tied confidences on a boundary are split by their order.
    """
    if scheme == "equal_width":
        return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], confidence, side="right")
    r, n = confidence.shape
    order = np.argsort(confidence, axis=1, kind="stable")
    index = np.empty((r, n), dtype=np.intp)
    np.put_along_axis(index, order, np.broadcast_to(np.arange(n) * n_bins // n, (r, n)), axis=1)
    return index


def bin_totals(confidence: np.ndarray, correct: np.ndarray, n_bins: int, scheme: str):
    """Per-bin count, sum of confidence and number correct, each of shape (r, n_bins)."""
    r = confidence.shape[0]
    flat = (bin_index(confidence, n_bins, scheme) + n_bins * np.arange(r)[:, None]).ravel()

    def total(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(flat, weights=weights, minlength=r * n_bins).reshape(r, n_bins)

    return total(None), total(confidence.ravel()), total(correct.ravel().astype(float))


def _accuracy(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _top_label(probs, y)[1].mean(axis=-1)


def _ece(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    confidence, correct = _top_label(probs, y)
    _, conf_sum, correct_sum = bin_totals(confidence, correct, n_bins, scheme)
    # (n_b / n) * |mean conf - mean acc| = |sum conf - sum correct| / n
    return np.abs(conf_sum - correct_sum).sum(axis=1) / confidence.shape[1]


def _mce(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    confidence, correct = _top_label(probs, y)
    count, conf_sum, correct_sum = bin_totals(confidence, correct, n_bins, scheme)
    return (np.abs(conf_sum - correct_sum) / np.maximum(count, 1)).max(axis=1)


def _debiased_ce(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    confidence, correct = _top_label(probs, y)
    count, conf_sum, correct_sum = bin_totals(confidence, correct, n_bins, scheme)
    size = np.maximum(count, 1)
    acc = correct_sum / size
    squared = (conf_sum / size - acc) ** 2 - acc * (1.0 - acc) / np.maximum(count - 1, 1)
    squared = np.where(count >= 2, squared, 0.0)
    return np.sqrt(np.maximum((count * squared).sum(axis=1) / confidence.shape[1], 0.0))


def _plug_in_l2_ce(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    """``sqrt(Σ_b (n_b/n)(conf_b − acc_b)²)``: the ℓ2 error of the rows' own distribution, on which
    the debiased estimator's resamples centre (its bias-correction reference)."""
    confidence, correct = _top_label(probs, y)
    count, conf_sum, correct_sum = bin_totals(confidence, correct, n_bins, scheme)
    size = np.maximum(count, 1)
    return np.sqrt((count * (conf_sum / size - correct_sum / size) ** 2).sum(axis=1) / confidence.shape[1])


def _classwise_ece(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    """Mean over classes of the ECE of ``p_ik`` against ``1[y_i = k]`` (each class binned on its own)."""
    r, n, k = probs.shape
    score = np.swapaxes(probs, 1, 2).reshape(r * k, n)
    is_class = (y[:, None, :] == np.arange(k)[None, :, None]).reshape(r * k, n)
    _, score_sum, hit_sum = bin_totals(score, is_class, n_bins, scheme)
    return (np.abs(score_sum - hit_sum).sum(axis=1) / n).reshape(r, k).mean(axis=1)


def _brier(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    onehot = np.arange(probs.shape[-1]) == y[..., None]
    return ((probs - onehot) ** 2).sum(axis=-1).mean(axis=-1)


def _positive_brier(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ((probs[..., 1] - (y == 1)) ** 2).mean(axis=-1)


def _nll(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    p_true = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
    return -np.log(np.maximum(p_true, NLL_FLOOR)).mean(axis=-1)


def _auroc(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    confidence, correct = _top_label(probs, y)
    n = confidence.shape[1]
    ranks = rankdata(confidence, axis=1)  # average ranks for ties: ties count one half
    n_correct = correct.sum(axis=1).astype(float)
    n_wrong = n - n_correct
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * correct).sum(axis=1) - n_correct * (n_correct + 1) / 2) / (n_correct * n_wrong)
    return np.where((n_correct > 0) & (n_wrong > 0), auc, np.nan)


def selective_risk(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence sorted decreasing, with the risk at each example's own threshold, shape (r, n).

    ``risk[i]`` is the error rate among all examples whose confidence is >= the ``i``-th largest;
    ``end[i]`` is the position of the last example tied with the ``i``-th.
    """
    n = confidence.shape[1]
    order = np.argsort(-confidence, axis=1, kind="stable")
    ordered = np.take_along_axis(confidence, order, axis=1)
    errors = np.cumsum(~np.take_along_axis(correct, order, axis=1), axis=1)
    last_of_tie = np.ones_like(ordered, dtype=bool)
    last_of_tie[:, :-1] = ordered[:, :-1] != ordered[:, 1:]
    end = np.where(last_of_tie, np.arange(n), n)
    end = np.minimum.accumulate(end[:, ::-1], axis=1)[:, ::-1]
    return ordered, np.take_along_axis(errors, end, axis=1) / (end + 1), end


def _aurc(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    _, risk, _ = selective_risk(*_top_label(probs, y))
    return risk.mean(axis=1)



# --- the metric table -----------------------------------------------------------------------


@dataclass(frozen=True)
class MetricFunction:
    """A batch-first metric, ``fn(probs (r, n, k), y (r, n)) -> (r,)``, and how its interval is formed.

    Calling it calls ``fn``, so it can be used wherever a plain batch-first function can.

    Attributes
    ----------
    fn : callable
        The batch-first function.
    interval : {"percentile", "bias_corrected"}
        See the module docstring and :data:`INTERVAL_METHODS`.
    reference : callable or None
        For a bias-corrected metric whose estimator is not the plug-in functional (the debiased CE),
        the plug-in functional, evaluated on the sample only; None when ``fn`` is its own plug-in.
    bounds : (float, float)
        Range of the metric; values and intervals are clipped to it.
    """

    fn: BatchMetric
    interval: IntervalMethod = "percentile"
    reference: BatchMetric | None = None
    bounds: tuple[float, float] = (-math.inf, math.inf)

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        return self.fn(*arrays)


@dataclass(frozen=True)
class MetricSpec:
    """A named metric: its batch-first core, its definition in words, and how its interval is formed."""

    core: BatchMetric
    definition: str
    binned: bool = False
    binary_only: bool = False
    interval: IntervalMethod = "percentile"
    reference: BatchMetric | None = None
    bounds: tuple[float, float] = (0.0, 1.0)


_BINS = "{n_bins} {scheme} bins of the top-label confidence c_i = max_k p_ik"
_METRICS: dict[str, MetricSpec] = {
    "accuracy": MetricSpec(_accuracy, "accuracy = (1/n) Σ_i 1[argmax_k p_ik = y_i]"),
    "ece": MetricSpec(_ece, "ECE = Σ_b (n_b/n)·|acc_b − conf_b| over " + _BINS, binned=True, interval="bias_corrected"),
    "classwise_ece": MetricSpec(
        _classwise_ece,
        "classwise ECE (Kull et al. 2019) = (1/K) Σ_k Σ_b (n_bk/n)·|freq_bk − conf_bk|, where class k's "
        "probabilities p_ik are cut into {n_bins} {scheme} bins, conf_bk is their mean in bin b and "
        "freq_bk the share of its rows whose label is k",
        binned=True, interval="bias_corrected",
    ),
    "debiased_ce": MetricSpec(
        _debiased_ce,
        "debiased ℓ2 calibration error (Kumar et al. 2019) = sqrt(max(0, Σ_b (n_b/n)·[(conf_b − acc_b)² "
        "− acc_b(1 − acc_b)/(n_b − 1)])), bins with n_b < 2 add 0, over " + _BINS,
        binned=True, interval="bias_corrected", reference=_plug_in_l2_ce,
    ),
    "mce": MetricSpec(_mce, "MCE = max_b |acc_b − conf_b| over the non-empty " + _BINS, binned=True,
                 interval="bias_corrected"),
    "brier": MetricSpec(
        _brier,
        "Brier = (1/n) Σ_i Σ_k (p_ik − 1[y_i = k])², the multiclass definition, in [0, 2] "
        "(for two classes it is twice the positive-class Brier)",
        bounds=(0.0, 2.0),
    ),
    "brier_positive": MetricSpec(
        _positive_brier, "positive-class Brier = (1/n) Σ_i (p_i1 − 1[y_i = 1])², binary tasks only", binary_only=True
    ),
    "nll": MetricSpec(_nll, f"NLL = −(1/n) Σ_i ln max(p_{{i,y_i}}, {NLL_FLOOR:g}), in nats",
                 bounds=(0.0, -math.log(NLL_FLOOR))),
    "auroc": MetricSpec(
        _auroc,
        "AUROC of confidence for correctness = P(c_i > c_j) + ½·P(c_i = c_j) for a correct i and a "
        "wrong j (rank formula; equals sklearn roc_auc_score(correct, confidence))",
    ),
    "aurc": MetricSpec(
        _aurc,
        "AURC = (1/n) Σ_i risk(c_i), risk(t) = error rate among examples with confidence ≥ t: the area "
        "under the selective risk–coverage curve (Geifman & El-Yaniv 2017); lower is better",
    ),
}

DEFAULT_BINS: dict[BinningScheme, int] = {"equal_width": 20, "equal_mass": 15}


def metric_function(name: str, *, n_bins: int | None = None, scheme: BinningScheme = "equal_width") -> MetricFunction:
    """The batch-first function of a metric, ``fn(probs (r, n, k), y (r, n)) -> (r,)``, with its
    interval method (see :class:`MetricFunction`).

    Parameters
    ----------
    name : str
        One of ``accuracy, ece, classwise_ece, debiased_ce, mce, brier, brier_positive, nll, auroc,
        aurc``.
    n_bins, scheme
        Binning of the binned metrics (``ece``, ``classwise_ece``, ``debiased_ce``, ``mce``);
        ``n_bins`` defaults to 20 for equal-width and 15 for equal-mass bins.

    Examples
    --------
    >>> import numpy as np
    >>> probs, y = np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([0, 0])
    >>> float(metric_function("accuracy")(probs[None], y[None])[0])
    0.5
    """
    spec = metric_spec(name)
    core, reference = spec.core, spec.reference
    if spec.binned:
        n_bins, scheme = check_binning(n_bins, scheme)
        core = partial(core, n_bins=n_bins, scheme=scheme)
        reference = None if reference is None else partial(reference, n_bins=n_bins, scheme=scheme)
    return MetricFunction(core, spec.interval, reference, spec.bounds)


def metric_spec(name: str) -> MetricSpec:
    if name not in _METRICS:
        raise DataError(f"unknown metric {name!r}; choose one of {', '.join(_METRICS)}")
    return _METRICS[name]


def check_binning(n_bins: int | None, scheme: str) -> tuple[int, str]:
    if scheme not in DEFAULT_BINS:
        raise DataError(f"scheme must be one of {', '.join(DEFAULT_BINS)}; got {scheme!r}")
    n_bins = DEFAULT_BINS[scheme] if n_bins is None else n_bins
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise DataError(f"n_bins must be an int >= 1; got {n_bins!r}")
    return int(n_bins), scheme
