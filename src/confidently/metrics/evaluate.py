"""Named metrics as :class:`~confidently.metrics.results.MetricResult`: value, definition in words,
and bootstrap interval, several metrics sharing one set of resamples."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_labels, check_probs
from confidently.errors import DataError
from confidently.metrics.bootstrap import check_bootstrap, estimate
from confidently.metrics.functions import check_binning, metric_function, metric_spec
from confidently.metrics.results import BinningScheme, MetricResult


def evaluate_metrics(
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
    check_bootstrap([probs, y], n_resamples, level)
    functions, definitions = [], []
    for name, params in requests.values():
        spec = metric_spec(name)
        if spec.binary_only and probs.shape[1] != 2:
            raise DataError(f"{name} is defined for two classes only; probs has {probs.shape[1]}")
        functions.append(metric_function(name, **params))
        definitions.append(spec.definition.format(**_binning_words(**params)) if spec.binned else spec.definition)
    found = estimate(functions, [probs, y], n_resamples, seed, level)
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
    n_bins, scheme = check_binning(n_bins, scheme)
    return {"n_bins": n_bins, "scheme": scheme.replace("_", "-")}


def _note(name: str, probs: np.ndarray, y: np.ndarray) -> str:
    if name != "auroc":
        return ""
    correct = probs.argmax(axis=1) == y
    if correct.all() or not correct.any():
        state = "correct" if correct.all() else "wrong"
        return f"AUROC is undefined (NaN): every prediction is {state}, so confidence cannot rank correct above wrong"
    return ""


def metric_result(name: str, probs: ArrayLike, y: ArrayLike, n_resamples: int, seed: int, **params: Any) -> MetricResult:
    return evaluate_metrics({name: (name, params)}, probs, y, n_resamples, seed)[name]
