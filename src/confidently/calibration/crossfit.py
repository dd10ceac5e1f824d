"""Out-of-fold calibration, so that no calibrated probability comes from a calibrator fitted on it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedKFold

from confidently.calibration.base import Calibrator, clone
from confidently.calibration.registry import make_calibrator
from confidently.calibration.validation import check_labels, check_probs
from confidently.errors import CalibrationError

CalibratorSpec = str | Calibrator | Callable[[], Calibrator]


def cross_fit_predict(
    calibrator: CalibratorSpec,
    probs: ArrayLike,
    y: ArrayLike,
    *,
    n_splits: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Calibrated probabilities for every row from a calibrator that never saw that row.

    The rows are split into ``n_splits`` stratified folds (``StratifiedKFold(shuffle=True,
    random_state=seed)``); for each fold a fresh calibrator is fitted on the other folds and
    calibrates that fold. Metrics computed on the result are honest estimates of how the method does
    on new data of the same kind.

    Parameters
    ----------
    calibrator : str, Calibrator or callable
        A method name for :func:`make_calibrator`, a calibrator whose unfitted copy is fitted per fold
        (``sklearn.base.clone``; a fitted contextual calibrator is applied as it is), or a
        zero-argument factory returning a new calibrator.
    probs : array-like of shape (n_samples, n_classes)
        Raw class probabilities.
    y : array-like of shape (n_samples,)
        Class indices.
    n_splits : int, default=5
        Number of folds (at least 2).
    seed : int, default=0
        Seed of the fold shuffle.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        Out-of-fold calibrated probabilities, in the order of ``probs``.

    Raises
    ------
    CalibrationError
        If ``n_splits < 2``, a class present in ``y`` has fewer than ``n_splits`` examples, or the
        calibrator is an unfitted :class:`ContextualCalibrator` (it is fitted on content-free
        inputs, never on these rows; a fitted one is applied as it is).
    """
    probs = check_probs(probs)
    y = check_labels(y, n_samples=probs.shape[0], n_classes=probs.shape[1])
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2:
        raise CalibrationError(f"n_splits must be an int >= 2; got {n_splits!r}")
    counts = np.bincount(y, minlength=probs.shape[1])
    present = counts[counts > 0]
    if present.min() < n_splits:
        described = ", ".join(f"class {i}: {c}" for i, c in enumerate(counts))
        raise CalibrationError(
            f"cannot cross-fit with n_splits={n_splits}: every class present needs at least "
            f"{n_splits} examples ({described}); lower n_splits or label more examples"
        )
    factory = _factory(calibrator)
    out = np.empty_like(probs)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train, test in folds.split(probs, y):
        calibrator = factory()
        if calibrator.fits_on_batch:
            calibrator.fit(probs[train], y[train])
        elif not calibrator.is_fitted:
            raise CalibrationError(
                f"{type(calibrator).__name__} is fitted on content-free inputs, not on labelled rows; "
                "fit it on them first (it then needs no cross-fitting: it never sees a label)"
            )
        out[test] = calibrator.predict_proba(probs[test])
    return out


def _factory(calibrator: CalibratorSpec) -> Callable[[], Calibrator]:
    if isinstance(calibrator, str):
        return lambda: make_calibrator(calibrator)
    if isinstance(calibrator, Calibrator):
        return lambda: clone(calibrator)
    if callable(calibrator):
        return calibrator
    raise CalibrationError(f"calibrator must be a method name, a Calibrator or a factory; got {calibrator!r}")
