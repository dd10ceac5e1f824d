"""Accuracy and calibration metrics, each with a percentile-bootstrap 95% interval.

Conventions: ``probs`` has shape (n_samples, n_classes) and ``y`` holds class indices; the
*confidence* of a row is its largest probability, the *prediction* its argmax, and the row is
*correct* when the prediction equals ``y``. Calibration metrics here are top-label: they compare
confidence with correctness.

Every metric is written once, *batch-first*: it takes arrays with a leading resample axis
(``probs`` of shape (r, n, k), ``y`` of shape (r, n)) and returns r values. The point estimate is
that function on the data itself (r = 1) and the bootstrap runs it on all resampled index sets at
once, so 1,000 resamples of every metric cost about as much as a few hundred numpy calls.
:func:`metric_function` hands out these batch-first functions by name for :func:`bootstrap_ci` and
:func:`paired_bootstrap_diff`.

References
----------
Guo, C. et al. (2017). On calibration of modern neural networks. ICML (ECE, reliability diagrams).
Naeini, M. P., Cooper, G. & Hauskrecht, M. (2015). Obtaining well calibrated probabilities using
Bayesian binning. AAAI (ECE, MCE).
Kumar, A., Liang, P. & Ma, T. (2019). Verified uncertainty calibration. NeurIPS (debiased estimator).
Geifman, Y. & El-Yaniv, R. (2017). Selective classification for deep neural networks. NeurIPS (AURC).
Efron, B. & Tibshirani, R. (1993). An introduction to the bootstrap (percentile intervals).
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
        The point estimate (NaN when undefined; ``note`` says why).
    definition : str
        The formula and its parameters (bins, binning scheme), so the number can be reproduced.
    n : int
        Number of examples.
    ci_low, ci_high : float
        Percentile-bootstrap interval at ``ci_level`` (NaN when ``n_resamples`` is 0).
    ci_level : float
        Coverage of the interval, 0.95 by default.
    n_resamples, seed : int
        Bootstrap resamples and the seed of their indices.
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
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {key: _jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile-bootstrap interval: the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of
    the metric over resamples of the rows (resamples where it is undefined are left out)."""

    low: float
    high: float
    level: float
    n_resamples: int
    seed: int


@dataclass(frozen=True)
class PairedDifference:
    """``metric(a) - metric(b)`` on the same rows, with a paired-bootstrap interval.

    Both sides are evaluated on the same resampled row indices in every resample, so the interval
    reflects only how the two differ, not how hard the rows are. If the interval excludes 0 the
    difference is significant at level ``1 - level`` (two-sided).
    """

    diff: float
    ci_low: float
    ci_high: float
    level: float
    n: int
    n_resamples: int
    seed: int

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
class _Spec:
    core: BatchMetric
    definition: str
    binned: bool = False
    binary_only: bool = False


_BINS = "{n_bins} {scheme} bins of the top-label confidence c_i = max_k p_ik"
_METRICS: dict[str, _Spec] = {
    "accuracy": _Spec(_accuracy, "accuracy = (1/n) Σ_i 1[argmax_k p_ik = y_i]"),
    "ece": _Spec(_ece, "ECE = Σ_b (n_b/n)·|acc_b − conf_b| over " + _BINS, binned=True),
    "debiased_ce": _Spec(
        _debiased_ce,
        "debiased ℓ2 calibration error (Kumar et al. 2019) = sqrt(max(0, Σ_b (n_b/n)·[(conf_b − acc_b)² "
        "− acc_b(1 − acc_b)/(n_b − 1)])), bins with n_b < 2 add 0, over " + _BINS,
        binned=True,
    ),
    "mce": _Spec(_mce, "MCE = max_b |acc_b − conf_b| over the non-empty " + _BINS, binned=True),
    "brier": _Spec(
        _brier,
        "Brier = (1/n) Σ_i Σ_k (p_ik − 1[y_i = k])², the multiclass definition, in [0, 2] "
        "(for two classes it is twice the positive-class Brier)",
    ),
    "brier_positive": _Spec(
        _positive_brier, "positive-class Brier = (1/n) Σ_i (p_i1 − 1[y_i = 1])², binary tasks only", binary_only=True
    ),
    "nll": _Spec(_nll, f"NLL = −(1/n) Σ_i ln max(p_{{i,y_i}}, {NLL_FLOOR:g}), in nats"),
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


def metric_function(name: str, *, n_bins: int | None = None, scheme: BinningScheme = "equal_width") -> BatchMetric:
    """The batch-first function of a metric: ``fn(probs (r, n, k), y (r, n)) -> (r,)``.

    Parameters
    ----------
    name : str
        One of ``accuracy, ece, debiased_ce, mce, brier, brier_positive, nll, auroc, aurc``.
    n_bins, scheme
        Binning of the binned metrics (``ece``, ``debiased_ce``, ``mce``); ``n_bins`` defaults to 20
        for equal-width and 15 for equal-mass bins.

    Examples
    --------
    >>> import numpy as np
    >>> probs, y = np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([0, 0])
    >>> float(metric_function("accuracy")(probs[None], y[None])[0])
    0.5
    """
    spec = _spec(name)
    if not spec.binned:
        return spec.core
    n_bins, scheme = _check_binning(n_bins, scheme)
    return partial(spec.core, n_bins=n_bins, scheme=scheme)


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


def _estimate(
    fn: BatchMetric, arrays: Sequence[np.ndarray], n_resamples: int, seed: int, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate of ``fn`` on ``arrays`` and its percentile-bootstrap interval.

    ``fn`` returns one value or a row of values per resample; the three results have that shape.
    Resamples draw row indices with replacement (the same indices for every array); resamples where
    a value is NaN are left out of its interval.
    """
    point = _call(fn, [a[None] for a in arrays], 1)[0]
    values = np.empty((0, point.size))
    if n_resamples:
        values = _resample(fn, arrays, n_resamples, seed).reshape(n_resamples, point.size)
    low, high = np.full(point.size, np.nan), np.full(point.size, np.nan)
    defined = ~np.all(np.isnan(values), axis=0)
    if np.any(defined):
        tail = (1.0 - level) / 2.0
        low[defined], high[defined] = np.nanquantile(values[:, defined], [tail, 1.0 - tail], axis=0)
    return point, low.reshape(point.shape), high.reshape(point.shape)


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
    """Percentile-bootstrap interval of a metric.

    Rows are drawn with replacement ``n_resamples`` times (``numpy.random.default_rng(seed)``); the
    same indices are used for every array. ``metric_fn`` is batch-first: it receives each array with
    a leading resample axis, shape (r, n, ...), and returns r values (see :func:`metric_function`).

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.tile([[0.8, 0.2]], (50, 1)); y = np.array([0] * 40 + [1] * 10)
    >>> interval = bootstrap_ci(metric_function("accuracy"), probs, y, n_resamples=200)
    >>> 0.6 < interval.low < 0.8 < interval.high < 0.95
    True
    """
    arrays = _check_bootstrap(arrays, n_resamples, level)
    _, low, high = _estimate(metric_fn, arrays, n_resamples, seed, level)
    return BootstrapInterval(float(low), float(high), level, n_resamples, seed)


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
    resample draws one set of row indices and evaluates both sides on it.
    """
    a_arrays, b_arrays = list(a_arrays), list(b_arrays)
    arrays = _check_bootstrap([*a_arrays, *b_arrays], n_resamples, level)
    split = len(a_arrays)

    def difference(*batched: np.ndarray) -> np.ndarray:
        return metric_fn(*batched[:split]) - metric_fn(*batched[split:])

    diff, low, high = _estimate(difference, arrays, n_resamples, seed, level)
    return PairedDifference(float(diff), float(low), float(high), level, arrays[0].shape[0], n_resamples, seed)


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

    def all_metrics(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.column_stack([fn(p, labels) for fn in functions])

    values, low, high = _estimate(all_metrics, [probs, y], n_resamples, seed, level)
    results = {}
    for i, (key, (name, _)) in enumerate(requests.items()):
        results[key] = MetricResult(
            name=key, value=float(values[i]), definition=definitions[i], n=int(y.size),
            ci_low=float(low[i]), ci_high=float(high[i]), ci_level=level,
            n_resamples=n_resamples, seed=seed, note=_note(name, probs, y),
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
    bins (5% stripes), or 15 for ``scheme="equal_mass"``. The plug-in estimate is biased upwards on
    small samples; see :func:`debiased_calibration_error`.
    """
    return _single("ece", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


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
    ``brier_positive`` (binary tasks only), ``nll``, ``auroc``, ``aurc``; each is
    :meth:`MetricResult.to_dict`. ``"reliability"`` holds the equal-width :func:`reliability_bins`.
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
    if probs.shape[1] == 2:
        requests["brier_positive"] = ("brier_positive", {})
    results = _evaluate(requests, probs, y, n_resamples, seed, level)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    return {
        "n": int(y.size),
        "n_classes": int(probs.shape[1]),
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "level": level, "method": "percentile"},
        "metrics": {key: result.to_dict() for key, result in results.items()},
        "reliability": reliability_bins(confidence, correct, n_bins, "equal_width").to_dict(),
    }
