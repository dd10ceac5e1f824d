"""Every metric of one set of predictions in one JSON-able dict, for reports."""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from confidently.calibration.validation import check_labels, check_probs
from confidently.metrics.evaluate import evaluate_metrics
from confidently.metrics.reliability import classwise_reliability, reliability_bins
from confidently.metrics.results import INTERVAL_METHODS


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
    results = evaluate_metrics(requests, probs, y, n_resamples, seed, level)
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
