"""The contract every calibrator follows, and the validation and JSON serialisation they share.

A calibrator maps raw class probabilities ``probs`` of shape (n_samples, n_classes) to calibrated ones
of the same shape. As in scikit-learn, the constructor only stores its keyword arguments; ``fit``
validates its input once, learns state in attributes ending in ``_`` and returns ``self``; using a
calibrator before ``fit`` raises :class:`~confidently.errors.NotFittedError`. As in netcal, each
method lives in its own small module and writes only ``_fit`` and ``_predict``.

Saved calibrators are JSON, never pickle: ``to_dict`` gives the method name, the constructor
parameters and the fitted state as plain lists and numbers, and ``from_dict`` rebuilds the object and
checks it by calibrating one row before handing it back.
"""

from __future__ import annotations

import inspect
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.numeric import EPS, normalise_rows
from confidently.calibration.validation import check_labels, check_probs
from confidently.errors import ArtifactError, CalibrationError, NotFittedError
from confidently.files import atomic_write_json, read_json

#: ``format`` field of a saved calibrator, and the version of its layout.
FORMAT = "confidently.calibrator"
FORMAT_VERSION = 1


class CalibrationWarning(UserWarning):
    """Base class of the warnings raised while fitting a calibrator."""


class SmallSampleWarning(CalibrationWarning):
    """A calibrator was fitted on fewer examples than it needs to be reliable."""


@dataclass(frozen=True)
class Interval:
    """An allowed range for a numeric constructor parameter (scikit-learn's ``Interval``).

    ``kind`` is ``int`` or ``float``; ``low``/``high`` are inclusive bounds, ``None`` for unbounded.
    """

    kind: type
    low: float | None = None
    high: float | None = None

    def check(self, owner: str, name: str, value: Any) -> None:
        abstract = numbers.Integral if self.kind is int else numbers.Real
        ok = isinstance(value, abstract) and not isinstance(value, bool) and np.isfinite(value)
        if ok and self.low is not None:
            ok = value >= self.low
        if ok and self.high is not None:
            ok = value <= self.high
        if not ok:
            low = "-inf" if self.low is None else self.low
            high = "inf" if self.high is None else self.high
            raise CalibrationError(
                f"{owner}: {name} must be {self.kind.__name__} in [{low}, {high}]; got {value!r}"
            )


class Calibrator(ABC):
    """Base class: maps raw class probabilities to calibrated class probabilities.

    Subclasses set :attr:`name` (the registry key, also written into saved files), list their
    numeric parameters in :attr:`_constraints`, and implement ``_fit(probs, y)`` and
    ``_predict(probs)`` on already-validated arrays.

    Attributes
    ----------
    n_classes_ : int
        Number of classes seen in ``fit``.
    n_samples_ : int
        Number of rows seen in ``fit``.
    """

    name: ClassVar[str]
    _constraints: ClassVar[dict[str, Interval]] = {}
    #: Whether a :class:`~confidently.calibration.stacked.StackedCalibrator` may fit an unfitted
    #: instance on the probabilities (and labels) it is given.
    fits_on_batch: ClassVar[bool] = True

    # --- public API -------------------------------------------------------------------------

    def fit(self, probs: ArrayLike, y: ArrayLike | None = None) -> Calibrator:
        """Fit on raw class probabilities ``probs`` of shape (n_samples, n_classes) and labels ``y``.

        Label-free calibrators ignore ``y``. Returns ``self``.
        """
        self._validate_params()
        probs = check_probs(probs)
        y = self._check_targets(probs, y)
        for attribute in self._fitted_attributes():
            delattr(self, attribute)
        self._fit(probs, y)
        self.n_classes_ = int(probs.shape[1])
        self.n_samples_ = int(probs.shape[0])
        return self

    def predict_proba(self, probs: ArrayLike) -> np.ndarray:
        """Calibrated class probabilities, an array of the same shape as ``probs``."""
        self._check_fitted()
        return self._predict(check_probs(probs, n_classes=self.n_classes_))

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "n_classes_")

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments, read back from the instance."""
        return {name: getattr(self, name) for name in self.param_names()}

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the constructor's keyword arguments."""
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description: method, parameters and fitted state (``None`` before ``fit``)."""
        state = None
        if self.is_fitted:
            state = {name: _encode(getattr(self, name)) for name in self._fitted_attributes()}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "method": self.name,
            "params": _encode(self.get_params()),
            "state": state,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        """Rebuild a calibrator saved by :meth:`to_dict`.

        Raises
        ------
        ArtifactError
            If ``data`` is not a calibrator of this class, or its state is incomplete or corrupt.
        """
        _check_header(data)
        if data["method"] != cls.name:
            raise ArtifactError(
                f"saved calibrator is {data['method']!r}, not {cls.name!r}; "
                "use confidently.calibration.load_calibrator to load any method"
            )
        try:
            calibrator = cls(**cls._params_from_json(dict(data.get("params") or {})))
            calibrator._validate_params()
        except (TypeError, CalibrationError) as error:
            raise ArtifactError(f"saved {cls.name} calibrator has bad parameters: {error}") from None
        state = data.get("state")
        if state is not None:
            if not isinstance(state, Mapping):
                raise ArtifactError(f"saved {cls.name} calibrator: state must be an object")
            calibrator._set_state(state)
            calibrator._check_loaded()
        return calibrator

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` atomically; the calibrator must be fitted."""
        self._check_fitted()
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Calibrator:
        """Read a calibrator of this class written by :meth:`save`."""
        return cls.from_dict(read_json(path))

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # --- hooks for subclasses ---------------------------------------------------------------

    @abstractmethod
    def _fit(self, probs: np.ndarray, y: np.ndarray | None) -> None:
        """Learn the fitted state from validated arrays."""

    @abstractmethod
    def _predict(self, probs: np.ndarray) -> np.ndarray:
        """Calibrate validated probabilities."""

    def _check_targets(self, probs: np.ndarray, y: ArrayLike | None) -> np.ndarray | None:
        """Validate ``y``; label-free calibrators do not use it."""
        return None

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def _set_state(self, state: Mapping[str, Any]) -> None:
        for name, value in state.items():
            if not (isinstance(name, str) and name.endswith("_") and not name.startswith("_")):
                raise ArtifactError(f"saved {self.name} calibrator: {name!r} is not a fitted attribute")
            setattr(self, name, _decode(value))

    # --- internals --------------------------------------------------------------------------

    def _validate_params(self) -> None:
        for name, interval in self._constraints.items():
            interval.check(type(self).__name__, name, getattr(self, name))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with labelled "
                "probabilities first, or load a saved calibrator."
            )

    def _fitted_attributes(self) -> list[str]:
        return sorted(k for k in vars(self) if k.endswith("_") and not k.startswith("_"))

    def _check_loaded(self) -> None:
        """Calibrate one uniform row: corrupt state fails here, at load, not in the first request."""
        k = getattr(self, "n_classes_", None)
        if not isinstance(k, int) or isinstance(k, bool) or k < 2:
            raise ArtifactError(f"saved {self.name} calibrator: n_classes_ must be an int >= 2; got {k!r}")
        try:
            out = self.predict_proba(np.full((1, k), 1.0 / k))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise ArtifactError(f"saved {self.name} calibrator has corrupt state: {error}") from None
        if out.shape != (1, k) or not np.all(np.isfinite(out)) or abs(out.sum() - 1.0) > 1e-6:
            raise ArtifactError(f"saved {self.name} calibrator has corrupt state: it maps a uniform row to {out}")


class SupervisedCalibrator(Calibrator):
    """A calibrator fitted on labelled examples; refuses data it cannot learn from.

    Parameters
    ----------
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    """

    _constraints: ClassVar[dict[str, Interval]] = {"min_samples": Interval(int, 2)}

    def __init__(self, *, min_samples: int = 20):
        self.min_samples = min_samples

    def _check_targets(self, probs: np.ndarray, y: ArrayLike | None) -> np.ndarray:
        if y is None:
            raise CalibrationError(f"{type(self).__name__} needs labels y to fit")
        labels = check_labels(y, n_samples=probs.shape[0], n_classes=probs.shape[1])
        counts = np.bincount(labels, minlength=probs.shape[1])
        described = ", ".join(f"class {i}: {c}" for i, c in enumerate(counts))
        if labels.size < self.min_samples:
            raise CalibrationError(
                f"{type(self).__name__} refuses to fit on {labels.size} examples "
                f"(min_samples={self.min_samples}; {described}); label more examples"
            )
        if np.count_nonzero(counts) < 2:
            raise CalibrationError(
                f"{type(self).__name__} cannot fit: all {labels.size} examples are in one class "
                f"({described}); calibration needs examples of at least two classes"
            )
        return labels


class OneVsRestCalibrator(SupervisedCalibrator):
    """A calibrator that maps one score in [0, 1] to a probability.

    For two classes the map is fitted on the positive-class probability ``probs[:, 1]`` and the
    output is ``[1 - q, q]``. For more, one map per class is fitted on ``probs[:, j]`` against
    ``y == j`` and the outputs are renormalised to sum to 1 (a row mapped to all zeros becomes
    uniform).

    Attributes
    ----------
    maps_ : list of dict
        One fitted map per score column (one for binary tasks), as JSON-able arrays and numbers.
    """

    def _fit(self, probs: np.ndarray, y: np.ndarray) -> None:
        columns = [1] if probs.shape[1] == 2 else range(probs.shape[1])
        self.maps_ = [self._fit_map(probs[:, j], (y == j).astype(float)) for j in columns]

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        if probs.shape[1] == 2:
            q = self._apply_map(self.maps_[0], probs[:, 1])
            return np.column_stack([1.0 - q, q])
        if len(self.maps_) != probs.shape[1]:
            raise ValueError(f"{len(self.maps_)} fitted maps for {probs.shape[1]} classes")
        columns = [self._apply_map(m, probs[:, j]) for j, m in enumerate(self.maps_)]
        return normalise_rows(np.column_stack(columns))

    @abstractmethod
    def _fit_map(self, score: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        """Fit the map from ``score`` (n,) to P(target = 1); return its JSON-able parameters."""

    @abstractmethod
    def _apply_map(self, params: Mapping[str, Any], score: np.ndarray) -> np.ndarray:
        """Apply a fitted map to ``score`` (n,); values in [0, 1]."""


class LabelBiasCalibrator(Calibrator):
    """Label-free correction of a constant bias towards some labels (shared by contextual and batch).

    ``fit(probs)`` estimates the bias as the mean class probability of the rows given,

    .. math::
        \\hat p = \\frac{1}{m}\\sum_{i=1}^{m} p_i,

    and ``predict_proba`` divides it out and renormalises,

    .. math::
        q = \\frac{p / \\hat p}{\\sum_j p_j / \\hat p_j}
          = \\operatorname{softmax}(\\ln p - \\ln \\hat p).

    Subclasses differ only in which rows the bias is estimated from. Labels are never used: ``y``
    is accepted by ``fit`` and ignored, so these can be stacked under a supervised calibrator.

    Attributes
    ----------
    bias_ : ndarray of shape (n_classes,)
        The estimated bias ``p̂`` (clipped to ``>= 1e-12`` so that it can be divided by).
    """

    def __init__(self) -> None:
        """Takes no parameters."""

    def _fit(self, probs: np.ndarray, y: np.ndarray | None) -> None:
        self.bias_ = np.clip(probs.mean(axis=0), EPS, None)

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        return normalise_rows(probs / self.bias_)


def clone(calibrator: Calibrator) -> Calibrator:
    """A new, unfitted calibrator with the same constructor parameters."""
    return type(calibrator)(**calibrator.get_params())


def _check_header(data: Any) -> None:
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ArtifactError(f"not a confidently calibrator: expected format {FORMAT!r}")
    if data.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"calibrator format_version {data.get('format_version')!r} is not supported "
            f"(this version of confidently reads {FORMAT_VERSION}); refit or upgrade confidently"
        )
    if not isinstance(data.get("method"), str):
        raise ArtifactError("saved calibrator has no method name")


def _encode(value: Any) -> Any:
    """Arrays and numpy scalars to lists and Python numbers, calibrators to dicts, recursively."""
    if isinstance(value, Calibrator):
        return value.to_dict()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    """Inverse of :func:`_encode`: a list of numbers becomes a float array."""
    if isinstance(value, Mapping):
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
            return np.asarray(value, dtype=float)
        return [_decode(item) for item in value]
    return value

