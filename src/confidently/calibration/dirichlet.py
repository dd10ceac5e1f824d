"""Dirichlet calibration: one jointly fitted linear map of the log class probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from confidently.calibration.base import Interval, SupervisedCalibrator
from confidently.calibration.numeric import safe_log
from confidently.calibration.state import read_vector
from confidently.errors import ArtifactError


class DirichletCalibrator(SupervisedCalibrator):
    """Dirichlet calibration (Kull et al. 2019): a full matrix on the log-probabilities, then softmax.

    .. math::
        q = \\operatorname{softmax}(W \\ln p + b)

    with ``W`` of shape (K, K) and ``b`` of shape (K,), fitted jointly on all classes by maximum
    likelihood with off-diagonal and intercept regularisation (ODIR):

    .. math::
        L(W, b) = \\frac{1}{n}\\Big[\\sum_i -\\ln q_{i, y_i}
            + \\lambda \\sum_{j \\ne l} W_{jl}^2 + \\mu \\sum_j b_j^2\\Big]

    Unlike one-vs-rest methods (isotonic, histogram, beta), which calibrate each class alone and
    renormalise, one map moves all classes together, and an off-diagonal weight can move mass
    between two classes the model confuses. The diagonal is not penalised, so temperature scaling
    (``W = I/T``, ``b = 0``) costs nothing; the penalty is a Gaussian prior (summed, not averaged,
    over rows), so its pull fades as labelled rows accumulate. With ``off_diagonal_l2 = 0`` and
    ``intercept_l2 = 0`` this is matrix scaling (Guo et al. 2017). The fit starts at the identity
    map (``W = I``, ``b = 0``) and uses L-BFGS-B with the exact gradient; ``p`` is clipped to
    ``>= 1e-12`` before the log. Works for any number of classes; for two it is a close relative of
    beta calibration.

    Parameters
    ----------
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    off_diagonal_l2 : float, default=10.0
        ``λ``: strength of the penalty on the off-diagonal entries of ``W``.
    intercept_l2 : float, default=10.0
        ``μ``: strength of the penalty on ``b``. The defaults gave the lowest held-out NLL among
        0.01–100 on synthetic 3-class sets of 50–1,000 rows (tests/calibration/test_dirichlet.py's
        generator), within 0.003 nats of the best beyond 300 rows.
    classes : list of str or int, optional
        The label of each probability column (see :class:`~confidently.calibration.base.SupervisedCalibrator`).

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes, n_classes)
        ``W``.
    intercept_ : ndarray of shape (n_classes,)
        ``b``.

    References
    ----------
    Kull, M., Perelló-Nieto, M., Kängsepp, M., Silva Filho, T., Song, H. & Flach, P. (2019). Beyond
    temperature scaling: obtaining well-calibrated multi-class probabilities with Dirichlet
    calibration. NeurIPS.
    """

    name = "dirichlet"
    _constraints: ClassVar[dict[str, Interval]] = {
        **SupervisedCalibrator._constraints,
        "off_diagonal_l2": Interval(float, 0.0),
        "intercept_l2": Interval(float, 0.0),
    }

    def __init__(self, *, min_samples: int = 20, off_diagonal_l2: float = 10.0, intercept_l2: float = 10.0,
                 classes: list[str] | list[int] | None = None):
        super().__init__(min_samples=min_samples, classes=classes)
        self.off_diagonal_l2 = off_diagonal_l2
        self.intercept_l2 = intercept_l2

    def _fit(self, probs: np.ndarray, y: np.ndarray) -> None:
        log_p = safe_log(probs)
        n, k = log_p.shape
        onehot = np.eye(k)[y]
        off_diagonal = 1.0 - np.eye(k)

        def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[: k * k].reshape(k, k), theta[k * k:]
            log_q = log_softmax(log_p @ w.T + b, axis=1)
            off = w * off_diagonal
            loss = (-np.sum(onehot * log_q) + self.off_diagonal_l2 * np.sum(off**2)
                    + self.intercept_l2 * (b @ b)) / n
            residual = (np.exp(log_q) - onehot) / n
            grad_w = residual.T @ log_p + 2.0 * self.off_diagonal_l2 * off / n
            grad_b = residual.sum(axis=0) + 2.0 * self.intercept_l2 * b / n
            return float(loss), np.concatenate([grad_w.ravel(), grad_b])

        start = np.concatenate([np.eye(k).ravel(), np.zeros(k)])
        result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B",
                          options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-14})
        self.coef_ = result.x[: k * k].reshape(k, k)
        self.intercept_ = result.x[k * k:]

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        return softmax(safe_log(probs) @ self.coef_.T + self.intercept_, axis=1)

    def _read_state(self, state: Mapping[str, Any], where: str) -> set[str]:
        k = self.n_classes_
        rows = state.get("coef_")
        if not isinstance(rows, list) or len(rows) != k:
            raise ArtifactError(f"{where}.coef_ must be a list of {k} rows of {k} numbers")
        self.coef_ = np.stack([read_vector(row, f"{where}.coef_[{i}]", length=k) for i, row in enumerate(rows)])
        self.intercept_ = read_vector(state.get("intercept_"), f"{where}.intercept_", length=k)
        return {"coef_", "intercept_"}
