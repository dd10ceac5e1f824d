"""Accuracy, calibration errors (ECE, classwise ECE, debiased ℓ2 CE, MCE) and proper scores (Brier, NLL),
each a :class:`~confidently.metrics.results.MetricResult` with its bootstrap interval."""

from __future__ import annotations

from numpy.typing import ArrayLike

from confidently.metrics.evaluate import metric_result
from confidently.metrics.results import BinningScheme, MetricResult


def accuracy(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Fraction of rows whose argmax equals ``y``: ``(1/n) Σ_i 1[argmax_k p_ik = y_i]``."""
    return metric_result("accuracy", probs, y, n_resamples, seed)


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
    return metric_result("ece", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


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
    return metric_result("classwise_ece", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


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
    return metric_result("debiased_ce", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


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
    return metric_result("mce", probs, y, n_resamples, seed, n_bins=n_bins, scheme=scheme)


def brier_score(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Multiclass Brier score ``(1/n) Σ_i Σ_k (p_ik - 1[y_i = k])²``, in [0, 2].

    For two classes this is twice :func:`positive_class_brier_score`, the binary definition.
    """
    return metric_result("brier", probs, y, n_resamples, seed)


def positive_class_brier_score(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Binary Brier score of the positive class (column 1), ``(1/n) Σ_i (p_i1 - 1[y_i = 1])²``."""
    return metric_result("brier_positive", probs, y, n_resamples, seed)


def negative_log_likelihood(probs: ArrayLike, y: ArrayLike, *, n_resamples: int = 1000, seed: int = 0) -> MetricResult:
    """Mean negative log-likelihood of the true class, in nats, with ``p`` floored at 1e-12."""
    return metric_result("nll", probs, y, n_resamples, seed)
