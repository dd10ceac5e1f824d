"""Accuracy and calibration metrics, each with a 95% bootstrap interval that contains its estimate.

Conventions: ``probs`` has shape (n_samples, n_classes) and ``y`` holds class indices; the
*confidence* of a row is its largest probability, the *prediction* its argmax, and the row is
*correct* when the prediction equals ``y``. Calibration metrics are top-label (they compare
confidence with correctness) except the classwise ECE, which compares every class's probability
with that class's frequency.

Every metric is written once, *batch-first*: it takes arrays with a leading resample axis
(``probs`` of shape (r, n, k), ``y`` of shape (r, n)) and returns r values. The point estimate is
that function on the data itself (r = 1) and the bootstrap runs it on all resampled index sets at
once, so 1,000 resamples of every metric cost about as much as a few hundred numpy calls.
:func:`metric_function` hands out these batch-first functions by name for :func:`bootstrap_ci` and
:func:`paired_bootstrap_diff`.

Intervals come in two kinds, fixed per metric in advance (never chosen by looking at the data):

* *percentile* — accuracy, Brier and NLL (means of a per-row quantity, unbiased), AUROC (a
  U-statistic) and AURC: the value is the metric on the sample ``θ̂``; the interval is
  ``[θ̂ + (q_lo − median θ*), θ̂ + (q_hi − median θ*)]``, where ``θ*`` are the metric's values on
  resamples of the rows and ``q_lo, q_hi`` their ``(1 - level)/2`` and ``(1 + level)/2``
  quantiles: the percentile interval, re-centred so that its median is the sample value. For
  these estimators the resamples' median is the sample value up to Monte-Carlo noise, so this is
  the plain percentile interval, except that it contains ``θ̂`` even with few resamples or rows.
* *bias-corrected* — the binned calibration errors (ECE, classwise ECE, MCE, debiased CE). Their
  sample value is biased upwards by sampling noise, and resamples add that noise once more, so on
  well-calibrated data the whole bootstrap distribution can lie above the sample value: a
  percentile interval then excludes its own estimate, and so does BCa, whose endpoints are
  quantiles of the same distribution. The value reported is the bootstrap bias-corrected estimate
  ``θ̃ = θ̂ − (median θ* − t̂)`` and the interval the basic bootstrap interval
  ``[θ̂ − (q_hi − t̂), θ̂ − (q_lo − t̂)]``, both clipped to [0, 1]; ``θ̂`` is the metric on the
  sample (kept as ``sample_value``), ``θ*`` its resampled values with quantiles ``q_lo, q_hi``,
  and ``t̂`` the plug-in functional on the sample (``θ̂`` itself, except for the debiased CE,
  whose resamples centre on the plug-in ℓ2 error).

The median lies between the two quantiles, so either interval contains its value by construction;
clipping to the metric's range keeps that.

References
----------
Guo, C. et al. (2017). On calibration of modern neural networks. ICML (ECE, reliability diagrams).
Naeini, M. P., Cooper, G. & Hauskrecht, M. (2015). Obtaining well calibrated probabilities using
Bayesian binning. AAAI (ECE, MCE).
Kumar, A., Liang, P. & Ma, T. (2019). Verified uncertainty calibration. NeurIPS (debiased estimator).
Geifman, Y. & El-Yaniv, R. (2017). Selective classification for deep neural networks. NeurIPS (AURC).
Kull, M. et al. (2019). Beyond temperature scaling: obtaining well-calibrated multi-class
probabilities with Dirichlet calibration. NeurIPS (classwise ECE).
Efron, B. & Tibshirani, R. (1993). An introduction to the bootstrap (percentile intervals; the
bootstrap estimate of bias, ch. 10).
Davison, A. C. & Hinkley, D. V. (1997). Bootstrap methods and their application, §5.2 (basic
bootstrap interval).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from confidently.calibration.validation import check_confidence, check_correct, check_labels, check_probs
from confidently.errors import DataError

BinningScheme = Literal["equal_width", "equal_mass"]
BatchMetric = Callable[..., np.ndarray]
IntervalMethod = Literal["percentile", "bias_corrected"]

#: How each kind of interval is formed, in words (reports quote this).
INTERVAL_METHODS: dict[str, str] = {
    "percentile": "value = the metric on the sample; interval = the 2.5th and 97.5th percentiles of the "
                  "metric over bootstrap resamples of the rows, re-centred so that their median is the "
                  "sample value (used for unbiased estimators, where the two agree up to Monte-Carlo noise)",
    "bias_corrected": "value = bootstrap bias-corrected estimate θ̂ − (median of resamples − plug-in on the "
                      "sample); interval = basic bootstrap interval reflected about the sample value, both "
                      "clipped to [0, 1]. Used for binned calibration errors, whose sample value is biased "
                      "upwards and whose plain percentile interval can exclude it",
}

#: Probabilities are floored here before the log in the NLL, so one confident mistake costs at most
#: ``-ln 1e-12 ≈ 27.6`` nats instead of infinity.
NLL_FLOOR = 1e-12

# Resamples are evaluated in chunks of about this many bytes of gathered input, which bounds memory
# for large n while keeping each numpy call big enough to be fast.
_CHUNK_BYTES = 32 * 2**20


# --- results --------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """NaN becomes None (JSON has no NaN); arrays become lists."""
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class MetricResult:
    """One metric on one set of predictions.

    Attributes
    ----------
    name : str
        Short key, e.g. ``"ece"``.
    value : float
        The point estimate, always inside ``[ci_low, ci_high]`` (NaN when undefined; ``note`` says
        why). For bias-corrected metrics it is the bias-corrected estimate; otherwise, and whenever
        ``n_resamples`` is 0, it equals ``sample_value``.
    definition : str
        The formula and its parameters (bins, binning scheme), so the number can be reproduced.
    n : int
        Number of examples.
    ci_low, ci_high : float
        Bootstrap interval at ``ci_level`` (NaN when ``n_resamples`` is 0).
    ci_level : float
        Coverage of the interval, 0.95 by default.
    n_resamples, seed : int
        Bootstrap resamples and the seed of their indices.
    sample_value : float
        ``definition`` applied to the rows themselves, before any bias correction.
    interval : {"percentile", "bias_corrected"}
        How the value and interval were formed (see :data:`INTERVAL_METHODS`).
    note : str
        Anything the reader must know to interpret the value; empty when nothing.
    """

    name: str
    value: float
    definition: str
    n: int
    ci_low: float
    ci_high: float
    ci_level: float
    n_resamples: int
    seed: int
    sample_value: float
    interval: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {key: _jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class BootstrapInterval:
    """A bootstrap interval and the estimate it contains (resamples where the metric is undefined
    are left out).

    ``method`` is ``"percentile"`` (the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the
    metric over resamples; ``estimate`` is the metric on the sample) or ``"bias_corrected"`` (see
    :data:`INTERVAL_METHODS`).
    """

    low: float
    high: float
    level: float
    n_resamples: int
    seed: int
    estimate: float
    method: str


@dataclass(frozen=True)
class PairedDifference:
    """``metric(a) - metric(b)`` on the same rows, with a paired-bootstrap interval.

    Both sides are evaluated on the same resampled row indices in every resample, so the interval
    reflects only how the two differ, not how hard the rows are. If the interval excludes 0 the
    difference is significant at level ``1 - level`` (two-sided). ``diff`` is inside the interval;
    for a bias-corrected metric it is the bias-corrected difference, and ``sample_diff`` the
    difference on the rows themselves.
    """

    diff: float
    ci_low: float
    ci_high: float
    level: float
    n: int
    n_resamples: int
    seed: int
    sample_diff: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {key: _jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of confidence against accuracy (the data of a reliability diagram).

    Attributes
    ----------
    lower, upper : ndarray of shape (n_bins,)
        Bin bounds: the fixed edges ``[b/B, (b+1)/B)`` for equal-width bins (the last bin includes
        1); the smallest and largest confidence in the bin for equal-mass bins (NaN when empty).
    count : ndarray of shape (n_bins,)
        Examples per bin.
    mean_confidence, accuracy : ndarray of shape (n_bins,)
        Mean confidence and fraction correct per bin (NaN when empty).
    n_bins : int
    scheme : {"equal_width", "equal_mass"}
    n : int
        Total examples.
    """

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    mean_confidence: np.ndarray
    accuracy: np.ndarray
    n_bins: int
    scheme: str
    n: int

    @property
    def ece(self) -> float:
        """``Σ_b (n_b/n)·|acc_b − conf_b|``: the same number :func:`expected_calibration_error` gives."""
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.mean_confidence[filled])
        return float(np.sum(self.count[filled] * gaps) / self.n)

    def to_dict(self) -> dict[str, Any]:
        return {**{key: _jsonable(value) for key, value in asdict(self).items()}, "ece": self.ece}


@dataclass(frozen=True)
class RiskCoverageCurve:
    """Selective risk against coverage when only examples with confidence >= threshold are kept.

    One point per distinct confidence, from the highest threshold (lowest coverage) down.

    Attributes
    ----------
    threshold : ndarray
        The confidence thresholds, decreasing.
    coverage : ndarray
        Fraction of examples with confidence >= threshold.
    risk : ndarray
        Error rate among those examples.
    """

    threshold: np.ndarray
    coverage: np.ndarray
    risk: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {key: _jsonable(value) for key, value in asdict(self).items()}


# --- batch-first metric cores ---------------------------------------------------------------


def _top_label(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs.max(axis=-1), probs.argmax(axis=-1) == y


def _bin_index(confidence: np.ndarray, n_bins: int, scheme: str) -> np.ndarray:
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


def _bin_totals(confidence: np.ndarray, correct: np.ndarray, n_bins: int, scheme: str):
    """Per-bin count, sum of confidence and number correct, each of shape (r, n_bins)."""
    r = confidence.shape[0]
    flat = (_bin_index(confidence, n_bins, scheme) + n_bins * np.arange(r)[:, None]).ravel()

    def total(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(flat, weights=weights, minlength=r * n_bins).reshape(r, n_bins)

    return total(None), total(confidence.ravel()), total(correct.ravel().astype(float))


def _accuracy(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _top_label(probs, y)[1].mean(axis=-1)


def _ece(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    confidence, correct = _top_label(probs, y)
    _, conf_sum, correct_sum = _bin_totals(confidence, correct, n_bins, scheme)
    # (n_b / n) * |mean conf - mean acc| = |sum conf - sum correct| / n
    return np.abs(conf_sum - correct_sum).sum(axis=1) / confidence.shape[1]


def _mce(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    confidence, correct = _top_label(probs, y)
    count, conf_sum, correct_sum = _bin_totals(confidence, correct, n_bins, scheme)
    return (np.abs(conf_sum - correct_sum) / np.maximum(count, 1)).max(axis=1)


def _debiased_ce(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    confidence, correct = _top_label(probs, y)
    count, conf_sum, correct_sum = _bin_totals(confidence, correct, n_bins, scheme)
    size = np.maximum(count, 1)
    acc = correct_sum / size
    squared = (conf_sum / size - acc) ** 2 - acc * (1.0 - acc) / np.maximum(count - 1, 1)
    squared = np.where(count >= 2, squared, 0.0)
    return np.sqrt(np.maximum((count * squared).sum(axis=1) / confidence.shape[1], 0.0))


def _plug_in_l2_ce(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    """``sqrt(Σ_b (n_b/n)(conf_b − acc_b)²)``: the ℓ2 error of the rows' own distribution, on which
    the debiased estimator's resamples centre (its bias-correction reference)."""
    confidence, correct = _top_label(probs, y)
    count, conf_sum, correct_sum = _bin_totals(confidence, correct, n_bins, scheme)
    size = np.maximum(count, 1)
    return np.sqrt((count * (conf_sum / size - correct_sum / size) ** 2).sum(axis=1) / confidence.shape[1])


def _classwise_ece(probs: np.ndarray, y: np.ndarray, *, n_bins: int, scheme: str) -> np.ndarray:
    """Mean over classes of the ECE of ``p_ik`` against ``1[y_i = k]`` (each class binned on its own)."""
    r, n, k = probs.shape
    score = np.swapaxes(probs, 1, 2).reshape(r * k, n)
    is_class = (y[:, None, :] == np.arange(k)[None, :, None]).reshape(r * k, n)
    _, score_sum, hit_sum = _bin_totals(score, is_class, n_bins, scheme)
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


def _selective_risk(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    _, risk, _ = _selective_risk(*_top_label(probs, y))
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
class _Spec:
    core: BatchMetric
    definition: str
    binned: bool = False
    binary_only: bool = False
    interval: IntervalMethod = "percentile"
    reference: BatchMetric | None = None
    bounds: tuple[float, float] = (0.0, 1.0)


_BINS = "{n_bins} {scheme} bins of the top-label confidence c_i = max_k p_ik"
_METRICS: dict[str, _Spec] = {
    "accuracy": _Spec(_accuracy, "accuracy = (1/n) Σ_i 1[argmax_k p_ik = y_i]"),
    "ece": _Spec(_ece, "ECE = Σ_b (n_b/n)·|acc_b − conf_b| over " + _BINS, binned=True, interval="bias_corrected"),
    "classwise_ece": _Spec(
        _classwise_ece,
        "classwise ECE (Kull et al. 2019) = (1/K) Σ_k Σ_b (n_bk/n)·|freq_bk − conf_bk|, where class k's "
        "probabilities p_ik are cut into {n_bins} {scheme} bins, conf_bk is their mean in bin b and "
        "freq_bk the share of its rows whose label is k",
        binned=True, interval="bias_corrected",
    ),
    "debiased_ce": _Spec(
        _debiased_ce,
        "debiased ℓ2 calibration error (Kumar et al. 2019) = sqrt(max(0, Σ_b (n_b/n)·[(conf_b − acc_b)² "
        "− acc_b(1 − acc_b)/(n_b − 1)])), bins with n_b < 2 add 0, over " + _BINS,
        binned=True, interval="bias_corrected", reference=_plug_in_l2_ce,
    ),
    "mce": _Spec(_mce, "MCE = max_b |acc_b − conf_b| over the non-empty " + _BINS, binned=True,
                 interval="bias_corrected"),
    "brier": _Spec(
        _brier,
        "Brier = (1/n) Σ_i Σ_k (p_ik − 1[y_i = k])², the multiclass definition, in [0, 2] "
        "(for two classes it is twice the positive-class Brier)",
        bounds=(0.0, 2.0),
    ),
    "brier_positive": _Spec(
        _positive_brier, "positive-class Brier = (1/n) Σ_i (p_i1 − 1[y_i = 1])², binary tasks only", binary_only=True
    ),
    "nll": _Spec(_nll, f"NLL = −(1/n) Σ_i ln max(p_{{i,y_i}}, {NLL_FLOOR:g}), in nats",
                 bounds=(0.0, -math.log(NLL_FLOOR))),
    "auroc": _Spec(
        _auroc,
        "AUROC of confidence for correctness = P(c_i > c_j) + ½·P(c_i = c_j) for a correct i and a "
        "wrong j (rank formula; equals sklearn roc_auc_score(correct, confidence))",
    ),
    "aurc": _Spec(
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
    spec = _spec(name)
    core, reference = spec.core, spec.reference
    if spec.binned:
        n_bins, scheme = _check_binning(n_bins, scheme)
        core = partial(core, n_bins=n_bins, scheme=scheme)
        reference = None if reference is None else partial(reference, n_bins=n_bins, scheme=scheme)
    return MetricFunction(core, spec.interval, reference, spec.bounds)


def _spec(name: str) -> _Spec:
    if name not in _METRICS:
        raise DataError(f"unknown metric {name!r}; choose one of {', '.join(_METRICS)}")
    return _METRICS[name]


def _check_binning(n_bins: int | None, scheme: str) -> tuple[int, str]:
    if scheme not in DEFAULT_BINS:
        raise DataError(f"scheme must be one of {', '.join(DEFAULT_BINS)}; got {scheme!r}")
    n_bins = DEFAULT_BINS[scheme] if n_bins is None else n_bins
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise DataError(f"n_bins must be an int >= 1; got {n_bins!r}")
    return int(n_bins), scheme


# --- bootstrap ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Estimates:
    """Per metric: the reported value, the metric on the sample, and the interval."""

    value: np.ndarray
    sample: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _as_metric(fn: BatchMetric) -> MetricFunction:
    """A plain batch-first function gets a percentile interval."""
    return fn if isinstance(fn, MetricFunction) else MetricFunction(fn)


def _estimate(
    metrics: Sequence[MetricFunction], arrays: Sequence[np.ndarray], n_resamples: int, seed: int, level: float
) -> _Estimates:
    """Every metric on ``arrays`` and its bootstrap interval (see the module docstring), shape (m,).

    All metrics share one set of resamples, which draw row indices with replacement (the same
    indices for every array); resamples where a value is NaN are left out of its interval.
    """

    def all_metrics(*batched: np.ndarray) -> np.ndarray:
        return np.column_stack([_call(m.fn, batched, batched[0].shape[0]) for m in metrics])

    sample = _call(all_metrics, [a[None] for a in arrays], 1)[0]
    value, low, high = sample.copy(), np.full(sample.size, np.nan), np.full(sample.size, np.nan)
    if not n_resamples:
        return _Estimates(value, sample, low, high)
    values = _resample(all_metrics, arrays, n_resamples, seed)
    defined = ~np.all(np.isnan(values), axis=0)
    tail = (1.0 - level) / 2.0
    q_low, median, q_high = np.full((3, sample.size), np.nan)
    if np.any(defined):
        q_low[defined], median[defined], q_high[defined] = np.nanquantile(
            values[:, defined], [tail, 0.5, 1.0 - tail], axis=0)
    for i, metric in enumerate(metrics):
        if not defined[i]:
            continue
        if metric.interval == "bias_corrected":
            reference = sample[i] if metric.reference is None else _call(
                metric.reference, [a[None] for a in arrays], 1)[0]
            # Resamples sit (median - reference) above what they estimate; the sample value is taken
            # to sit as far above the truth, so the estimate and the (reflected) interval move down.
            found = sample[i] - (np.array([median[i], q_high[i], q_low[i]]) - reference)
        else:
            found = sample[i] + np.array([0.0, q_low[i] - median[i], q_high[i] - median[i]])
        value[i], low[i], high[i] = np.clip(found, *metric.bounds)
    return _Estimates(value, sample, low, high)


def _resample(fn: BatchMetric, arrays: Sequence[np.ndarray], n_resamples: int, seed: int) -> np.ndarray:
    """``fn`` on ``n_resamples`` resamples of the rows of ``arrays``, evaluated in chunks."""
    n = arrays[0].shape[0]
    rng = np.random.default_rng(seed)
    row_bytes = sum(a.itemsize * max(1, a[0].size) for a in arrays)
    chunk = int(max(1, min(n_resamples, _CHUNK_BYTES // max(1, n * row_bytes))))
    values = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        index = rng.integers(0, n, size=(size, n))
        values.append(_call(fn, [a[index] for a in arrays], size))
    return np.concatenate(values)


def _call(fn: BatchMetric, batched: Sequence[np.ndarray], r: int) -> np.ndarray:
    out = np.asarray(fn(*batched), dtype=float)
    if out.shape[:1] != (r,):
        raise ValueError(
            "metric_fn must be batch-first: given arrays of shape (r, n, ...) it must return r "
            f"values; it returned shape {out.shape} for r={r} (see metric_function)"
        )
    return out


def _check_bootstrap(arrays: Sequence[Any], n_resamples: int, level: float) -> list[np.ndarray]:
    arrays = [np.asarray(a) for a in arrays]
    if not arrays or arrays[0].ndim == 0 or arrays[0].shape[0] == 0:
        raise DataError("bootstrap needs at least one non-empty array")
    if any(a.ndim == 0 or a.shape[0] != arrays[0].shape[0] for a in arrays):
        raise DataError(f"bootstrap arrays must have the same number of rows; got {[a.shape for a in arrays]}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 0:
        raise DataError(f"n_resamples must be an int >= 0; got {n_resamples!r}")
    if not 0.0 < level < 1.0:
        raise DataError(f"level must be in (0, 1); got {level!r}")
    return arrays


def bootstrap_ci(
    metric_fn: BatchMetric, *arrays: ArrayLike, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> BootstrapInterval:
    """Bootstrap estimate and interval of a metric.

    Rows are drawn with replacement ``n_resamples`` times (``numpy.random.default_rng(seed)``); the
    same indices are used for every array. ``metric_fn`` is batch-first: it receives each array with
    a leading resample axis, shape (r, n, ...), and returns r values. A :class:`MetricFunction` (see
    :func:`metric_function`) brings its own interval method; a plain function gets a percentile
    interval.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.tile([[0.8, 0.2]], (50, 1)); y = np.array([0] * 40 + [1] * 10)
    >>> interval = bootstrap_ci(metric_function("accuracy"), probs, y, n_resamples=200)
    >>> 0.6 < interval.low < 0.8 < interval.high < 0.95
    True
    """
    arrays = _check_bootstrap(arrays, n_resamples, level)
    metric = _as_metric(metric_fn)
    found = _estimate([metric], arrays, n_resamples, seed, level)
    return BootstrapInterval(float(found.low[0]), float(found.high[0]), level, n_resamples, seed,
                             float(found.value[0]), metric.interval)


def paired_bootstrap_diff(
    metric_fn: BatchMetric,
    a_arrays: Sequence[ArrayLike],
    b_arrays: Sequence[ArrayLike],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDifference:
    """``metric(a) - metric(b)`` on the same examples, with a paired-bootstrap interval.

    Typical use: ``paired_bootstrap_diff(metric_function("ece"), (calibrated, y), (raw, y))``. Every
    resample draws one set of row indices and evaluates both sides on it. The difference gets the
    metric's interval method (a plain function: percentile).
    """
    a_arrays, b_arrays = list(a_arrays), list(b_arrays)
    arrays = _check_bootstrap([*a_arrays, *b_arrays], n_resamples, level)
    difference = _difference(_as_metric(metric_fn), len(a_arrays))
    found = _estimate([difference], arrays, n_resamples, seed, level)
    return PairedDifference(float(found.value[0]), float(found.low[0]), float(found.high[0]), level,
                            arrays[0].shape[0], n_resamples, seed, float(found.sample[0]), difference.interval)


def _difference(metric: MetricFunction, split: int) -> MetricFunction:
    """``metric(first split arrays) - metric(the rest)``, with the matching reference and bounds."""

    def apart(fn: BatchMetric) -> BatchMetric:
        return lambda *batched: fn(*batched[:split]) - fn(*batched[split:])

    low, high = metric.bounds
    return MetricFunction(apart(metric.fn), metric.interval,
                          None if metric.reference is None else apart(metric.reference), (low - high, high - low))


# --- public metrics -------------------------------------------------------------------------


def _evaluate(
    requests: dict[str, tuple[str, dict[str, Any]]],
    probs: ArrayLike,
    y: ArrayLike,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, MetricResult]:
    """Evaluate several metrics, sharing one set of bootstrap resamples.

    ``requests`` maps a result key to ``(metric name, binning parameters)``.
    """
    probs = check_probs(probs)
    y = check_labels(y, n_samples=probs.shape[0], n_classes=probs.shape[1])
    _check_bootstrap([probs, y], n_resamples, level)
    functions, definitions = [], []
    for name, params in requests.values():
        spec = _spec(name)
        if spec.binary_only and probs.shape[1] != 2:
            raise DataError(f"{name} is defined for two classes only; probs has {probs.shape[1]}")
        functions.append(metric_function(name, **params))
        definitions.append(spec.definition.format(**_binning_words(**params)) if spec.binned else spec.definition)
    found = _estimate(functions, [probs, y], n_resamples, seed, level)
    results = {}
    for i, (key, (name, _)) in enumerate(requests.items()):
        results[key] = MetricResult(
            name=key, value=float(found.value[i]), definition=definitions[i], n=int(y.size),
            ci_low=float(found.low[i]), ci_high=float(found.high[i]), ci_level=level,
            n_resamples=n_resamples, seed=seed, sample_value=float(found.sample[i]),
            interval=functions[i].interval, note=_note(name, probs, y),
        )
    return results


def _binning_words(n_bins: int | None = None, scheme: BinningScheme = "equal_width") -> dict[str, Any]:
    n_bins, scheme = _check_binning(n_bins, scheme)
    return {"n_bins": n_bins, "scheme": scheme.replace("_", "-")}


def _note(name: str, probs: np.ndarray, y: np.ndarray) -> str:
    if name != "auroc":
        return ""
    correct = probs.argmax(axis=1) == y
    if correct.all() or not correct.any():
        state = "correct" if correct.all() else "wrong"
        return f"AUROC is undefined (NaN): every prediction is {state}, so confidence cannot rank correct above wrong"
    return ""


def _single(name: str, probs: ArrayLike, y: ArrayLike, n_resamples: int, seed: int, **params: Any) -> MetricResult:
    return _evaluate({name: (name, params)}, probs, y, n_resamples, seed)[name]


def accuracy(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Fraction of rows whose argmax equals ``y``: ``(1/n) Σ_i 1[argmax_k p_ik = y_i]``."""
    return _single("accuracy", probs, y, n_resamples, seed)


def expected_calibration_error(
    probs: ArrayLike,
    y: ArrayLike,
    *,
    n_bins: int | None = None,
    scheme: BinningScheme = "equal_width",
    n_resamples: int = 1000,
    seed: int = 0,
) -> MetricResult:
    """Top-label expected calibration error.

    .. math::
        \\mathrm{ECE} = \\sum_b \\frac{n_b}{n} \\lvert \\mathrm{acc}_b - \\mathrm{conf}_b \\rvert

    over ``n_bins`` bins of the confidence (see :func:`reliability_bins`); defaults: 20 equal-width
    bins (5% stripes), or 15 for ``scheme="equal_mass"``. This sample value (``sample_value``) is
    biased upwards on small samples; with ``n_resamples > 0`` the reported ``value`` is its
    bootstrap bias-corrected estimate (module docstring). See also :func:`debiased_calibration_error`.
    """
    return _single("ece", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


def classwise_calibration_error(
    probs: ArrayLike,
    y: ArrayLike,
    *,
    n_bins: int | None = None,
    scheme: BinningScheme = "equal_width",
    n_resamples: int = 1000,
    seed: int = 0,
) -> MetricResult:
    r"""Classwise expected calibration error (Kull et al. 2019): every class's probability, not
    just the top one, against how often that class is the label.

    .. math::
        \mathrm{cwECE} = \frac{1}{K}\sum_{k=1}^{K} \sum_b \frac{n_{bk}}{n}
        \lvert \mathrm{freq}_{bk} - \mathrm{conf}_{bk} \rvert

    where class ``k``'s probabilities ``p_ik`` are cut into ``n_bins`` bins (see
    :func:`classwise_reliability`), ``conf_bk`` is their mean in bin ``b`` and ``freq_bk`` the share
    of the bin's rows labelled ``k``. A top-label ECE near 0 can hide a class whose probability is
    systematically too high when it is not the top one; this metric sees it. Bias-corrected like ECE.
    """
    return _single("classwise_ece", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


def debiased_calibration_error(
    probs: ArrayLike,
    y: ArrayLike,
    *,
    n_bins: int | None = None,
    scheme: BinningScheme = "equal_mass",
    n_resamples: int = 1000,
    seed: int = 0,
) -> MetricResult:
    """Debiased ℓ2 calibration error of Kumar, Liang & Ma (2019).

    .. math::
        \\sqrt{\\max\\Big(0, \\sum_b \\frac{n_b}{n}\\Big[(\\mathrm{conf}_b - \\mathrm{acc}_b)^2
        - \\frac{\\mathrm{acc}_b (1 - \\mathrm{acc}_b)}{n_b - 1}\\Big]\\Big)}

    The subtracted term is the expected squared error the bin's finite sample adds to an exactly
    calibrated bin, so a calibrated model scores near 0 even on few examples, where plug-in ECE
    does not. It is an ℓ2 (root-mean-square) error: compare it with itself, not with ECE. Defaults
    follow the paper: 15 equal-mass bins; bins with fewer than 2 examples add 0.
    """
    return _single("debiased_ce", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


def maximum_calibration_error(
    probs: ArrayLike,
    y: ArrayLike,
    *,
    n_bins: int | None = None,
    scheme: BinningScheme = "equal_width",
    n_resamples: int = 1000,
    seed: int = 0,
) -> MetricResult:
    """Largest bin gap, ``max_b |acc_b - conf_b|`` over non-empty bins (Naeini et al. 2015)."""
    return _single("mce", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


def brier_score(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Multiclass Brier score ``(1/n) Σ_i Σ_k (p_ik - 1[y_i = k])²``, in [0, 2].

    For two classes this is twice :func:`positive_class_brier_score`, the binary definition.
    """
    return _single("brier", probs, y, n_resamples, seed)


def positive_class_brier_score(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Binary Brier score of the positive class (column 1), ``(1/n) Σ_i (p_i1 - 1[y_i = 1])²``."""
    return _single("brier_positive", probs, y, n_resamples, seed)


def negative_log_likelihood(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Mean negative log-likelihood of the true class, in nats, with ``p`` floored at 1e-12."""
    return _single("nll", probs, y, n_resamples, seed)


def confidence_auroc(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """AUROC of the confidence as a score for "this prediction is correct".

    The probability that a random correct prediction has higher confidence than a random wrong one
    (ties count one half); equal to ``sklearn.metrics.roc_auc_score(correct, confidence)``. NaN,
    with a ``note``, when every prediction is correct or every one is wrong.
    """
    return _single("auroc", probs, y, n_resamples, seed)


def aurc(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Area under the selective risk–coverage curve (Geifman & El-Yaniv 2017); lower is better.

    ``AURC = (1/n) Σ_i risk(c_i)``, where ``risk(t)`` is the error rate among examples with
    confidence >= ``t`` (see :func:`risk_coverage_curve`); tied confidences share one threshold.
    """
    return _single("aurc", probs, y, n_resamples, seed)


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
    n_bins, scheme = _check_binning(n_bins, scheme)
    conf = check_confidence(confidence)
    hits = check_correct(correct, n_samples=conf.size)
    count, conf_sum, correct_sum = (t[0] for t in _bin_totals(conf[None], hits[None], n_bins, scheme))
    filled = count > 0
    safe = np.where(filled, count, 1)
    if scheme == "equal_width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        lower, upper = edges[:-1], edges[1:]
    else:
        index = _bin_index(conf[None], n_bins, scheme)[0]
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


def risk_coverage_curve(confidence: ArrayLike, correct: ArrayLike) -> RiskCoverageCurve:
    """Selective risk at each distinct confidence threshold (see :class:`RiskCoverageCurve`)."""
    conf = check_confidence(confidence)
    hits = check_correct(correct, n_samples=conf.size)
    ordered, risk, end = (a[0] for a in _selective_risk(conf[None], hits[None]))
    points = np.unique(end)
    return RiskCoverageCurve(threshold=ordered[points], coverage=(points + 1) / conf.size, risk=risk[points])


def summarize(
    probs: ArrayLike,
    y: ArrayLike,
    *,
    n_bins: int = 20,
    mass_bins: int = 15,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Every metric of one set of predictions, as a JSON-able dict for a report.

    All intervals come from the same ``n_resamples`` resamples. Keys of ``"metrics"``: ``accuracy``,
    ``ece`` (``n_bins`` equal-width bins), ``ece_equal_mass`` (``mass_bins`` equal-mass bins),
    ``debiased_ce`` (``mass_bins`` equal-mass bins), ``mce`` (equal-width), ``brier`` (multiclass),
    ``brier_positive`` (binary tasks only), ``classwise_ece`` (``n_bins`` equal-width bins; three or
    more classes only), ``nll``, ``auroc``, ``aurc``; each is :meth:`MetricResult.to_dict`.
    ``"reliability"`` holds the equal-width :func:`reliability_bins`, and with three or more classes
    ``"reliability_by_class"`` the equal-width :func:`classwise_reliability` tables in class order.
    NaN is written as ``None``.
    """
    probs = check_probs(probs)
    y = check_labels(y, n_samples=probs.shape[0], n_classes=probs.shape[1])
    width = {"n_bins": n_bins, "scheme": "equal_width"}
    mass = {"n_bins": mass_bins, "scheme": "equal_mass"}
    requests: dict[str, tuple[str, dict[str, Any]]] = {
        "accuracy": ("accuracy", {}),
        "ece": ("ece", width),
        "ece_equal_mass": ("ece", mass),
        "debiased_ce": ("debiased_ce", mass),
        "mce": ("mce", width),
        "brier": ("brier", {}),
        "nll": ("nll", {}),
        "auroc": ("auroc", {}),
        "aurc": ("aurc", {}),
    }
    multiclass = probs.shape[1] >= 3
    if multiclass:
        requests["classwise_ece"] = ("classwise_ece", width)
    else:
        requests["brier_positive"] = ("brier_positive", {})
    results = _evaluate(requests, probs, y, n_resamples, seed, level)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    summary = {
        "n": int(y.size),
        "n_classes": int(probs.shape[1]),
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "level": level,
                      "method": "per metric, named in its 'interval'", "methods": INTERVAL_METHODS},
        "metrics": {key: result.to_dict() for key, result in results.items()},
        "reliability": reliability_bins(confidence, correct, n_bins, "equal_width").to_dict(),
    }
    if multiclass:
        summary["reliability_by_class"] = [t.to_dict() for t in classwise_reliability(probs, y, n_bins)]
    return summary
