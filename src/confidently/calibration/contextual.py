"""Contextual calibration: remove the label bias the prompt shows on content-free inputs."""

from __future__ import annotations

import copy

from confidently.calibration.base import LabelBiasCalibrator


class ContextualCalibrator(LabelBiasCalibrator):
    """Contextual calibration, "Calibrate Before Use" (Zhao et al. 2021).

    The prompt is scored on a few *content-free* inputs (``"N/A"``, ``""``, ``"[MASK]"``), which
    should get equal probability on every label; their mean probabilities ``p_cf`` measure the bias
    the prompt and label words add. Calibrated probabilities divide it out,
    ``q = normalise(p / p_cf)``, the paper's ``W = diag(p_cf)^-1, b = 0``.

    Fit it on the content-free rows only: ``ContextualCalibrator().fit(content_free_probs)``; no
    labels are needed. To stack it under a supervised calibrator, fit it first and pass the fitted
    instance to :class:`~confidently.calibration.stacked.StackedCalibrator`. ``sklearn.base.clone``
    keeps the fit of a fitted instance: it was fitted on inputs no ``fit(probs, y)`` call sees again,
    so a copy without it could never be used (an unfitted one clones unfitted, as usual).

    Attributes
    ----------
    bias_ : ndarray of shape (n_classes,)
        ``p_cf``, the mean class probabilities of the content-free inputs.

    References
    ----------
    Zhao, Z., Wallace, E., Feng, S., Klein, D. & Singh, S. (2021). Calibrate before use: improving
    few-shot performance of language models. ICML.
    """

    name = "contextual"
    # fitted on content-free inputs; fitting it on the task's own rows would be batch calibration
    fits_on_batch = False

    def __sklearn_clone__(self) -> ContextualCalibrator:
        return copy.deepcopy(self) if self.is_fitted else super().__sklearn_clone__()
