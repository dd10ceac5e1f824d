"""Accuracy and calibration metrics, each with a bootstrap interval that contains its estimate.

Conventions: ``probs`` has shape (n_samples, n_classes) and ``y`` holds class indices; the
*confidence* of a row is its largest probability, the *prediction* its argmax, and the row is
*correct* when the prediction equals ``y``.

The package by role: :mod:`~confidently.metrics.results` (what is returned),
:mod:`~confidently.metrics.functions` (batch-first metric functions by name),
:mod:`~confidently.metrics.bootstrap` (intervals; the module docstring says how each is formed),
:mod:`~confidently.metrics.evaluate` (named metrics sharing one set of resamples),
:mod:`~confidently.metrics.calibration_error` (accuracy, ECE family, Brier, NLL),
:mod:`~confidently.metrics.ranking` (AUROC, AURC, risk–coverage), :mod:`~confidently.metrics.reliability`
(reliability tables) and :mod:`~confidently.metrics.summary` (everything for a report).
"""

from confidently.metrics.bootstrap import bootstrap_ci, paired_bootstrap_diff
from confidently.metrics.calibration_error import (accuracy, brier_score, classwise_calibration_error,
                                                   debiased_calibration_error, expected_calibration_error,
                                                   maximum_calibration_error, negative_log_likelihood,
                                                   positive_class_brier_score)
from confidently.metrics.functions import DEFAULT_BINS, NLL_FLOOR, MetricFunction, metric_function
from confidently.metrics.ranking import aurc, confidence_auroc, risk_coverage_curve
from confidently.metrics.reliability import classwise_reliability, reliability_bins
from confidently.metrics.results import (INTERVAL_METHODS, BatchMetric, BinningScheme, BootstrapInterval,
                                         IntervalMethod, MetricResult, PairedDifference, ReliabilityBins,
                                         RiskCoverageCurve)
from confidently.metrics.summary import summarize

__all__ = [
    "DEFAULT_BINS", "INTERVAL_METHODS", "NLL_FLOOR", "BatchMetric", "BinningScheme", "BootstrapInterval",
    "IntervalMethod", "MetricFunction", "MetricResult", "PairedDifference", "ReliabilityBins", "RiskCoverageCurve",
    "accuracy", "aurc", "bootstrap_ci", "brier_score", "classwise_calibration_error", "classwise_reliability",
    "confidence_auroc", "debiased_calibration_error", "expected_calibration_error", "maximum_calibration_error",
    "metric_function", "negative_log_likelihood", "paired_bootstrap_diff", "positive_class_brier_score",
    "reliability_bins", "risk_coverage_curve", "summarize",
]
