"""The hidden-state probe: a regularised linear classifier on the model's final hidden state.

Calibrators map the model's class probabilities to better ones and cannot rank texts any better than
the model did. The probe reads what the model computed before it chose a token: the final hidden state
at the answer position (:attr:`confidently.types.Scores.hidden`, taken from the same forward pass as the
next-token distribution), and fits a multinomial logistic regression on it with the labelled rows a
user supplies for calibration. Its output is a calibrated probability by construction (it is fitted by
log-loss), so it takes the calibrator's place in :func:`confidently.decision.decisions.decide` and in the bundle
(``probe.json``); a threshold certified on its out-of-fold scores (:func:`cross_fit_probe`) holds for
it as for any calibrator.

Features are standardised (mean and scale from the fitting rows); the L2 strength ``C`` is chosen by
stratified cross-validation on log-loss among :data:`DEFAULT_CS`. Saved as JSON (coefficients, means,
scales), never pickle; :meth:`HiddenStateProbe.from_dict` checks every value and probes the result.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from confidently.calibration.numeric import bound_rows, laplace_bounds
from confidently.calibration.state import check_depth, describe, read_int, read_real, read_vector
from confidently.calibration.validation import check_classes
from confidently.errors import ArtifactError, CalibrationError, ConfidentlyError, NotFittedError
from confidently.files import check_format

FORMAT = "confidently.probe"
FORMAT_VERSION = 1
#: Inverse L2 strengths tried by cross-validation (the features are standardised).
DEFAULT_CS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def check_hidden(hidden: Any, *, n_features: int | None = None, name: str = "hidden") -> np.ndarray:
    """``hidden`` as a finite float array of shape (n_samples, n_features), or :class:`CalibrationError`."""
    array = np.asarray(hidden, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 1:
        raise CalibrationError(f"{name} must have shape (n_samples, hidden_size); got shape {array.shape}")
    if n_features is not None and array.shape[1] != n_features:
        raise CalibrationError(f"{name} has {array.shape[1]} features; the probe was fitted on {n_features} "
                               "(hidden states of another model)")
    if not np.isfinite(array).all():
        raise CalibrationError(f"{name} holds non-finite values")
    return array


class HiddenStateProbe:
    """Multinomial logistic regression on final hidden states, with ``C`` chosen by cross-validation.

    Parameters
    ----------
    Cs : inverse L2 strengths to choose from (on standardised features).
    n_splits : folds of the cross-validation that chooses ``C``.
    seed : seed of the fold shuffle.
    classes : the label of each class column (default ``0 .. n_classes - 1``).

    Attributes
    ----------
    mean_, scale_ : array (d,): the standardisation learned from the fitting rows.
    coef_ : array (k, d) and ``intercept_`` (k,): class logits are ``standardised @ coef_.T + intercept_``.
    C_ : the chosen strength. ``classes_``, ``n_classes_``, ``n_samples_``, ``n_features_`` as named.
    """

    name: ClassVar[str] = "probe"
    #: :func:`~confidently.decision.decisions.decide` hands this one the hidden states, not the class probabilities.
    reads_hidden: ClassVar[bool] = True

    def __init__(self, *, Cs: tuple[float, ...] = DEFAULT_CS, n_splits: int = 5, seed: int = 0,
                 classes: list | None = None):
        self.Cs = tuple(float(c) for c in Cs)
        self.n_splits = n_splits
        self.seed = seed
        self.classes = classes

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "coef_")

    def unfitted(self) -> HiddenStateProbe:
        """A new, unfitted probe of this kind, with the same settings (as ``sklearn.base.clone`` gives a calibrator)."""
        return type(self)(Cs=self.Cs, n_splits=self.n_splits, seed=self.seed, classes=self.classes)

    def fit(self, hidden: Any, y: Any, *, n_classes: int) -> HiddenStateProbe:
        """Fit on hidden states (n, d) and class indices ``y`` (n,) in ``[0, n_classes)``; returns ``self``."""
        from sklearn.linear_model import LogisticRegression

        x = check_hidden(hidden)
        y = _check_targets(y, x.shape[0], n_classes, self.n_splits)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-6] = 1.0  # constant features carry nothing; keep them from dividing by zero
        z = (x - mean) / scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence notes on the weakest C: the CV judges them
            best = _choose_c(z, y, self.Cs, self.n_splits, self.seed)
            model = LogisticRegression(C=best, max_iter=2000).fit(z, y)
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1:  # sklearn's binary form: one logit for class 1 against class 0
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        self.mean_, self.scale_ = mean, scale
        self.coef_, self.intercept_ = coef, intercept
        self.C_ = best
        self.classes_ = check_classes(self.classes if self.classes is not None else list(range(n_classes)),
                                      n_classes=n_classes)
        self.n_classes_, self.n_samples_, self.n_features_ = n_classes, int(x.shape[0]), int(x.shape[1])
        return self

    def predict_proba(self, hidden: Any) -> np.ndarray:
        """Class probabilities (n, k) for hidden states (n, d); no entry below Laplace's ``1 / (n + k)``."""
        if not self.is_fitted:
            raise NotFittedError("this HiddenStateProbe is not fitted yet: fit it on labelled hidden states, or "
                                 "load a saved one")
        x = check_hidden(hidden, n_features=self.n_features_)
        logits = ((x - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return bound_rows(probs, float(laplace_bounds(self.n_samples_, self.n_classes_)[0]))

    def to_dict(self) -> dict[str, Any]:
        if not self.is_fitted:
            raise NotFittedError("only a fitted probe can be saved")
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "method": self.name,
                "params": {"Cs": list(self.Cs), "n_splits": self.n_splits, "seed": self.seed,
                           "classes": None if self.classes is None else list(self.classes)},
                "state": {"classes_": self.classes_.tolist(), "n_classes_": self.n_classes_,
                          "n_samples_": self.n_samples_, "n_features_": self.n_features_, "C_": self.C_,
                          "mean_": self.mean_.tolist(), "scale_": self.scale_.tolist(),
                          "coef_": self.coef_.tolist(), "intercept_": self.intercept_.tolist()}}

    def save(self, path) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` atomically."""
        from confidently.files import atomic_write_json

        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> HiddenStateProbe:
        """A probe saved by :meth:`to_dict`, every value checked; :class:`ArtifactError` names what is wrong."""
        check_depth(data)
        check_format(data, format=FORMAT, version=FORMAT_VERSION, what="hidden-state probe")
        params, state = data.get("params"), data.get("state")
        if not isinstance(params, Mapping) or not isinstance(state, Mapping):
            raise ArtifactError("saved probe: params and state must be objects")
        where = "saved probe: state"
        try:
            probe = cls(Cs=tuple(read_vector(params.get("Cs"), "saved probe: params.Cs", positive=True)),
                        n_splits=read_int(params.get("n_splits"), "saved probe: params.n_splits", low=2),
                        seed=read_int(params.get("seed"), "saved probe: params.seed", low=0),
                        classes=params.get("classes"))
            k = read_int(state.get("n_classes_"), f"{where}.n_classes_", low=2)
            d = read_int(state.get("n_features_"), f"{where}.n_features_", low=1)
            probe.n_classes_, probe.n_features_ = k, d
            probe.n_samples_ = read_int(state.get("n_samples_"), f"{where}.n_samples_", low=1)
            probe.classes_ = check_classes(state.get("classes_"), n_classes=k)
            probe.C_ = read_real(state.get("C_"), f"{where}.C_", low=0.0)
            probe.mean_ = read_vector(state.get("mean_"), f"{where}.mean_", length=d)
            probe.scale_ = read_vector(state.get("scale_"), f"{where}.scale_", length=d, positive=True)
            probe.intercept_ = read_vector(state.get("intercept_"), f"{where}.intercept_", length=k)
            coef = state.get("coef_")
            if not isinstance(coef, list) or len(coef) != k:
                raise ArtifactError(f"{where}.coef_ must be {k} rows of {d} numbers; got {describe(coef)}")
            probe.coef_ = np.stack([read_vector(row, f"{where}.coef_[{j}]", length=d) for j, row in enumerate(coef)])
            unknown = set(state) - {"classes_", "n_classes_", "n_samples_", "n_features_", "C_", "mean_", "scale_",
                                    "coef_", "intercept_"}
            if unknown:
                raise ArtifactError(f"{where} has unknown entries {sorted(map(str, unknown))}")
            probe.predict_proba(np.random.default_rng(0).normal(size=(4, d)) * probe.scale_ + probe.mean_)
        except ArtifactError:
            raise
        except (ConfidentlyError, ValueError, TypeError) as error:
            raise ArtifactError(f"saved probe is corrupt: {error}") from None
        return probe


def cross_fit_probe(hidden: Any, y: Any, *, n_classes: int, n_splits: int = 5, seed: int = 0,
                    Cs: tuple[float, ...] = DEFAULT_CS) -> np.ndarray:
    """Out-of-fold probe probabilities (n, k): each row from a probe (with its own ``C``) that never saw it.

    The folds are ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)``, as
    :func:`~confidently.calibration.cross_fit_predict` draws them for the calibrators.
    """
    from sklearn.model_selection import StratifiedKFold

    x = check_hidden(hidden)
    y = _check_targets(y, x.shape[0], n_classes, n_splits)
    out = np.empty((x.shape[0], n_classes))
    for train, test in StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(x, y):
        inner = max(2, min(n_splits, int(np.bincount(y[train], minlength=n_classes).min())))
        out[test] = HiddenStateProbe(Cs=Cs, n_splits=inner, seed=seed).fit(
            x[train], y[train], n_classes=n_classes).predict_proba(x[test])
    return out


def _choose_c(z: np.ndarray, y: np.ndarray, cs: tuple[float, ...], n_splits: int, seed: int) -> float:
    """The ``C`` of least mean held-out log-loss over stratified folds (each fold walks the Cs from the
    strongest penalty up, warm-starting from the previous solution: the same optimum, far fewer steps)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    order = sorted(cs)
    losses = np.zeros(len(order))
    for train, held in StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(z, y):
        model = LogisticRegression(max_iter=2000, warm_start=True)
        for j, c in enumerate(order):
            model.set_params(C=c).fit(z[train], y[train])
            losses[j] += log_loss(y[held], model.predict_proba(z[held]), labels=model.classes_)
    return order[int(np.argmin(losses))]


def _check_targets(y: Any, n_samples: int, n_classes: int, n_splits: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.shape != (n_samples,) or not np.issubdtype(labels.dtype, np.integer):
        raise CalibrationError(f"y must be {n_samples} class indices; got shape {labels.shape}, dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise CalibrationError(f"y holds class indices outside [0, {n_classes})")
    counts = np.bincount(labels, minlength=n_classes)
    if counts.min() < n_splits:
        described = ", ".join(f"class {j}: {c}" for j, c in enumerate(counts))
        raise CalibrationError(f"the probe needs at least {n_splits} labelled rows of every class ({described}); "
                               "label more examples")
    return labels
