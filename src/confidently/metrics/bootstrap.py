"""Bootstrap intervals for metrics, each containing its estimate, and paired differences between two models.

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from confidently.errors import DataError
from confidently.metrics.functions import MetricFunction
from confidently.metrics.results import BatchMetric, BootstrapInterval, PairedDifference

# Resamples are evaluated in chunks of about this many bytes of gathered input, which bounds memory
# for large n while keeping each numpy call big enough to be fast.
_CHUNK_BYTES = 32 * 2**20


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


def estimate(
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


def check_bootstrap(arrays: Sequence[Any], n_resamples: int, level: float) -> list[np.ndarray]:
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
    >>> from confidently.metrics import metric_function
    >>> probs = np.tile([[0.8, 0.2]], (50, 1)); y = np.array([0] * 40 + [1] * 10)
    >>> interval = bootstrap_ci(metric_function("accuracy"), probs, y, n_resamples=200)
    >>> 0.6 < interval.low < 0.8 < interval.high < 0.95
    True
    """
    arrays = check_bootstrap(arrays, n_resamples, level)
    metric = _as_metric(metric_fn)
    found = estimate([metric], arrays, n_resamples, seed, level)
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
    arrays = check_bootstrap([*a_arrays, *b_arrays], n_resamples, level)
    difference = _difference(_as_metric(metric_fn), len(a_arrays))
    found = estimate([difference], arrays, n_resamples, seed, level)
    return PairedDifference(float(found.value[0]), float(found.low[0]), float(found.high[0]), level,
                            arrays[0].shape[0], n_resamples, seed, float(found.sample[0]), difference.interval)


def _difference(metric: MetricFunction, split: int) -> MetricFunction:
    """``metric(first split arrays) - metric(the rest)``, with the matching reference and bounds."""

    def apart(fn: BatchMetric) -> BatchMetric:
        return lambda *batched: fn(*batched[:split]) - fn(*batched[split:])

    low, high = metric.bounds
    return MetricFunction(apart(metric.fn), metric.interval,
                          None if metric.reference is None else apart(metric.reference), (low - high, high - low))
