"""Platt scaling (binary) and vector scaling (more than two classes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_softmax, softmax

from confidently.calibration.base import OneVsRestCalibrator
from confidently.calibration.numeric import fit_logistic, safe_log, safe_logit
from confidently.calibration.state import read_object, read_real, read_vector


class PlattCalibrator(OneVsRestCalibrator):
    """Logistic regression on the log-odds of the raw positive-class probability.

    Binary tasks:

    .. math::
        q = \\sigma\\big(a \\cdot \\operatorname{logit}(p_1) + b\\big)

    with ``a, b`` minimising the cross-entropy against Platt's smoothed targets
    ``t+ = (N+ + 1) / (N+ + 2)`` and ``t- = 1 / (N- + 2)``, which keep the fit finite when the scores
    separate the classes (as scikit-learn's ``_SigmoidCalibration`` does). ``p`` is clipped to
    ``[1e-12, 1 - 1e-12]`` so the log-odds stay finite.

    More than two classes: *vector scaling* (Guo et al. 2017), a per-class scale and bias on the
    log-probabilities followed by a softmax,

    .. math::
        q = \\operatorname{softmax}(w \\odot \\ln p + c),

    fitted by minimising the negative log-likelihood. It was chosen over one-vs-rest sigmoids because
    it is one joint probability model (no renormalisation step) and contains temperature scaling
    (``w = 1/T``, ``c = 0``) as a special case.

    Parameters
    ----------
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    classes : list of str or int, optional
        The label of each probability column (see :class:`~confidently.calibration.base.SupervisedCalibrator`).

    Attributes
    ----------
    maps_ : list of dict
        Binary only: ``[{"a": slope, "b": intercept}]``.
    coef_, intercept_ : ndarray of shape (n_classes,)
        More than two classes only: the scales ``w`` and biases ``c``.

    References
    ----------
    Platt, J. (1999). Probabilistic outputs for support vector machines and comparisons to
    regularized likelihood methods. Guo, C. et al. (2017). On calibration of modern neural
    networks. ICML.
    """

    name = "platt"
    _map_keys: ClassVar[tuple[str, ...]] = ("a", "b")

    def _fit(self, probs: np.ndarray, y: np.ndarray) -> None:
        if probs.shape[1] == 2:
            super()._fit(probs, y)
        else:
            self.coef_, self.intercept_ = _fit_vector_scaling(safe_log(probs), y)

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        if probs.shape[1] == 2:
            return super()._predict(probs)
        return softmax(self.coef_ * safe_log(probs) + self.intercept_, axis=1)

    def _fit_map(self, score: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        n_pos = target.sum()
        n_neg = target.size - n_pos
        smoothed = np.where(target > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
        (a,), b = fit_logistic(safe_logit(score)[:, None], smoothed)
        return {"a": float(a), "b": b}

    def _apply_map(self, params: Mapping[str, Any], score: np.ndarray) -> np.ndarray:
        return expit(params["a"] * safe_logit(score) + params["b"])

    def _read_state(self, state: Mapping[str, Any], where: str) -> set[str]:
        if self.n_classes_ == 2:
            return super()._read_state(state, where)
        k = self.n_classes_
        self.coef_ = read_vector(state.get("coef_"), f"{where}.coef_", length=k)
        self.intercept_ = read_vector(state.get("intercept_"), f"{where}.intercept_", length=k)
        return {"coef_", "intercept_"}

    def _read_map(self, value: Any, where: str) -> dict[str, Any]:
        fitted = read_object(value, where, self._map_keys)
        return {key: read_real(fitted[key], f"{where}.{key}") for key in self._map_keys}


def _fit_vector_scaling(log_p: np.ndarray, y: np.ndarray, l2: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``mean(-ln softmax(w * log_p + c)[y])``; returns ``(w, c)``.

    Starts at the identity (``w = 1``, ``c = 0``). The small ridge on ``c`` removes the freedom to add
    the same constant to every bias, which leaves the softmax unchanged.
    """
    n, k = log_p.shape
    onehot = np.eye(k)[y]

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, c = theta[:k], theta[k:]
        log_q = log_softmax(w * log_p + c, axis=1)
        loss = -np.mean(np.sum(onehot * log_q, axis=1)) + 0.5 * l2 * (c @ c)
        residual = (np.exp(log_q) - onehot) / n
        grad = np.concatenate([np.sum(residual * log_p, axis=0), residual.sum(axis=0) + l2 * c])
        return float(loss), grad

    start = np.concatenate([np.ones(k), np.zeros(k)])
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000, "gtol": 1e-9})
    return result.x[:k], result.x[k:]
