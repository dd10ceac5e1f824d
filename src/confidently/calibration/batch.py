"""Batch calibration: remove the label bias estimated from the unlabelled rows themselves."""

from __future__ import annotations

from confidently.calibration.base import LabelBiasCalibrator


class BatchCalibrator(LabelBiasCalibrator):
    """Batch calibration (Zhou et al. 2024).

    The contextual bias is estimated from a batch of unlabelled task inputs instead of
    content-free ones, ``p̂ = mean_i p_i``, and removed in log space:
    ``q = softmax(ln p - ln p̂)`` (the same map as contextual calibration, so the two differ only in
    the rows they are fitted on). It assumes the classes are roughly balanced in the batch: on a
    batch where 90% of the rows truly belong to one class, it pushes predictions away from it. The
    batch mean is a shrunken estimate of the bias when the scores are spread out, so one step
    removes most, not all, of a strong bias.

    Fit it on unlabelled rows: ``BatchCalibrator().fit(unlabelled_probs)``. An unfitted instance
    inside a :class:`~confidently.calibration.stacked.StackedCalibrator` is fitted on the rows the
    stack is fitted on.

    Attributes
    ----------
    bias_ : ndarray of shape (n_classes,)
        ``p̂``, the mean class probabilities of the batch.

    References
    ----------
    Zhou, H., Wan, X., Proleev, L., Mincu, D., Chen, J., Heller, K. & Roy, S. (2024). Batch
    calibration: rethinking calibration for in-context learning and prompt engineering. ICLR.
    """

    name = "batch"
