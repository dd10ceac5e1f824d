"""Small numerical helpers shared by the calibrators: safe logs, row normalisation, logistic fits."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

#: Probabilities are clipped to [EPS, 1 - EPS] before a log so that a 0 or 1 from the model gives a
#: large finite log-odds (about ±27.6) instead of ±inf.
EPS = 1e-12


def safe_log(p: np.ndarray) -> np.ndarray:
    """``ln(clip(p, EPS, 1))``."""
    return np.log(np.clip(p, EPS, 1.0))


def safe_logit(p: np.ndarray) -> np.ndarray:
    """``ln(p / (1 - p))`` with ``p`` clipped to [EPS, 1 - EPS]."""
    q = np.clip(p, EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


def normalise_rows(values: np.ndarray) -> np.ndarray:
    """Divide each row by its sum; a row summing to 0 becomes uniform.

    One-vs-rest calibrators can map every class of a row to 0 (e.g. isotonic regression in its
    lowest step); uniform is the only choice that claims nothing about that row.
    """
    totals = values.sum(axis=1, keepdims=True)
    uniform = np.full_like(values, 1.0 / values.shape[1])
    return np.where(totals > 0, values / np.where(totals > 0, totals, 1.0), uniform)


def laplace_bounds(n: np.ndarray | int, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``1 / (n + k)`` and ``(n + 1) / (n + k)``: the least and greatest probability ``n`` examples support.

    Laplace's rule of succession: after ``n`` examples all of one class among ``k``, the posterior mean
    of that class's probability under a uniform prior is ``(n + 1) / (n + k)``. A probability of exactly
    0 or 1 would need infinitely many examples.
    """
    n = np.asarray(n, dtype=float)
    return 1.0 / (n + k), (n + 1.0) / (n + k)


def bound_rows(probs: np.ndarray, floor: float) -> np.ndarray:
    """Mix each row with the uniform distribution just enough that no class is below ``floor``.

    A row whose smallest entry ``m`` is below ``floor`` becomes ``(1 - w) p + w / k`` with
    ``w = (floor - m) / (1/k - m)``, which lifts ``m`` to ``floor`` exactly, keeps the row summing to 1
    and keeps the order of its classes; other rows are returned unchanged. Every entry then lies in
    ``[floor, 1 - (k - 1) floor]``. ``floor`` must be below ``1 / k``.
    """
    k = probs.shape[1]
    if not 0.0 < floor < 1.0 / k:
        raise ValueError(f"floor must be in (0, 1/{k}); got {floor}")
    low = np.minimum(probs.min(axis=1, keepdims=True), floor)  # rows already above the floor get weight 0
    weight = (floor - low) / (1.0 / k - low)
    return (1.0 - weight) * probs + weight / k


def fit_logistic(features: np.ndarray, targets: np.ndarray, *, l2: float = 1e-8) -> tuple[np.ndarray, float]:
    """Fit ``P(1 | x) = sigmoid(x @ w + c)`` by minimising the mean cross-entropy.

    .. math::
        L(w, c) = \\frac{1}{n}\\sum_i \\big[\\ln(1 + e^{z_i}) - t_i z_i\\big] + \\frac{\\lambda}{2}\\lVert w\\rVert^2,
        \\quad z_i = x_i^\\top w + c

    The tiny ridge ``λ`` (not on the intercept) only keeps the optimum finite on separable data, as
    the ``C=1e11`` of the reference Platt and beta implementations does.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    targets : ndarray of shape (n_samples,)
        Target probabilities in [0, 1] (0/1 labels, or Platt's smoothed targets).
    l2 : float
        Ridge strength ``λ``.

    Returns
    -------
    w : ndarray of shape (n_features,)
    c : float
    """
    n, d = features.shape

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, c = theta[:d], theta[d]
        z = features @ w + c
        loss = np.mean(np.logaddexp(0.0, z) - targets * z) + 0.5 * l2 * (w @ w)
        residual = (expit(z) - targets) / n
        grad = np.append(features.T @ residual + l2 * w, residual.sum())
        return float(loss), grad

    result = minimize(loss_and_grad, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000, "gtol": 1e-9})
    return result.x[:d], float(result.x[d])
