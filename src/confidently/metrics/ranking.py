"""How well confidence ranks correct predictions above wrong ones: AUROC, AURC and the
selective risk–coverage curve."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_confidence, check_correct
from confidently.metrics.evaluate import metric_result
from confidently.metrics.functions import selective_risk
from confidently.metrics.results import MetricResult, RiskCoverageCurve


def confidence_auroc(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """AUROC of the confidence as a score for "this prediction is correct".

    The probability that a random correct prediction has higher confidence than a random wrong one
    (ties count one half); equal to ``sklearn.metrics.roc_auc_score(correct, confidence)``. NaN,
    with a ``note``, when every prediction is correct or every one is wrong.
    """
    return metric_result("auroc", probs, y, n_resamples, seed)


def aurc(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Area under the selective risk–coverage curve (Geifman & El-Yaniv 2017); lower is better.

    ``AURC = (1/n) Σ_i risk(c_i)``, where ``risk(t)`` is the error rate among examples with
    confidence >= ``t`` (see :func:`risk_coverage_curve`); tied confidences share one threshold.
    """
    return metric_result("aurc", probs, y, n_resamples, seed)


def risk_coverage_curve(confidence: ArrayLike, correct: ArrayLike) -> RiskCoverageCurve:
    """Selective risk at each distinct confidence threshold (see :class:`RiskCoverageCurve`)."""
    conf = check_confidence(confidence)
    hits = check_correct(correct, n_samples=conf.size)
    ordered, risk, end = (a[0] for a in selective_risk(conf[None], hits[None]))
    points = np.unique(end)
    return RiskCoverageCurve(threshold=ordered[points], coverage=(points + 1) / conf.size, risk=risk[points])
