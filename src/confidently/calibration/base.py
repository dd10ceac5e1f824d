"""The contract every calibrator follows, and the validation and JSON serialisation they share.

A calibrator maps raw class probabilities ``probs`` of shape (n_samples, n_classes) to calibrated ones
of the same shape. It is a scikit-learn classifier whose input features are those probabilities
(``ClassifierMixin`` + ``BaseEstimator``): the constructor only stores its keyword arguments, so
``sklearn.base.clone``, ``get_params(deep=True)``/``set_params``, ``Pipeline`` and ``GridSearchCV`` work;
``fit`` validates its input once, learns state in attributes ending in ``_`` (``classes_`` among them,
so labels may be strings) and returns ``self``; ``predict`` gives the most probable class; using a
calibrator before ``fit`` raises :class:`~confidently.errors.NotFittedError`. As in netcal, each method
lives in its own small module and writes only ``_fit`` and ``_predict``.

Outputs are checked and bounded: ``predict_proba`` hands out nothing but probability rows (a corrupt
state fails closed with an error) and no class probability of exactly 0 or 1 (see
:meth:`Calibrator.predict_proba` for the bound).

Saved calibrators are JSON, never pickle: ``to_dict`` gives the method name, the constructor
parameters and the fitted state as plain lists and numbers; ``from_dict`` reads every value back
through the checks of :mod:`confidently.calibration.state` and calibrates a set of probe rows before
handing the calibrator back, so a corrupt file fails at load with one line saying what is wrong.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.base import clone as clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from confidently.calibration.numeric import EPS, bound_rows, laplace_bounds, normalise_rows
from confidently.calibration.state import check_depth, describe, read_any, read_int, read_vector
from confidently.calibration.validation import check_classes, check_probs, encode_labels
from confidently.errors import ArtifactError, CalibrationError, ConfidentlyError, NotFittedError
from confidently.files import atomic_write_json, check_format, read_json

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


class CalibratorNotFittedError(NotFittedError, SklearnNotFittedError):
    """A calibrator was used before ``fit``: caught as confidently's and as scikit-learn's NotFittedError."""


class Calibrator(ClassifierMixin, BaseEstimator, ABC):
    """Base class: maps raw class probabilities to calibrated class probabilities.

    Subclasses set :attr:`name` (the registry key, also written into saved files), list their
    numeric parameters in :attr:`_constraints`, and implement ``_fit(probs, y)`` and
    ``_predict(probs)`` on already-validated arrays (``y`` as column indices). A subclass whose fitted
    state is more than numbers reads it back in ``_read_state``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The label of each probability column (see ``classes`` and
        :func:`~confidently.calibration.validation.encode_labels`).
    n_classes_ : int
        Number of classes (probability columns) seen in ``fit``.
    n_samples_ : int
        Number of rows seen in ``fit``.
    """

    name: ClassVar[str]
    _constraints: ClassVar[dict[str, Interval]] = {}
    #: Whether a :class:`~confidently.calibration.stacked.StackedCalibrator` may fit an unfitted
    #: instance on the probabilities (and labels) it is given.
    fits_on_batch: ClassVar[bool] = True
    #: Fitted attributes every calibrator has; ``_read_state`` reads the others.
    _common_state: ClassVar[tuple[str, ...]] = ("classes_", "n_classes_", "n_samples_")

    # --- public API -------------------------------------------------------------------------

    def fit(self, probs: ArrayLike, y: ArrayLike | None = None) -> Calibrator:
        """Fit on raw class probabilities ``probs`` of shape (n_samples, n_classes) and labels ``y``.

        ``y`` holds column indices or labels (strings, say), as
        :func:`~confidently.calibration.validation.encode_labels` describes; label-free calibrators
        use it only to name the classes. Returns ``self``.
        """
        self._validate_params()
        probs = check_probs(probs)
        classes, targets = self._check_targets(probs, y)
        for attribute in self._fitted_attributes():
            delattr(self, attribute)
        self._fit(probs, targets)
        self.classes_ = classes
        self.n_classes_ = int(probs.shape[1])
        self.n_samples_ = int(probs.shape[0])
        return self

    def predict_proba(self, probs: ArrayLike) -> np.ndarray:
        """Calibrated class probabilities, an array of the same shape as ``probs`` (columns: ``classes_``).

        No entry is exactly 0 or 1. A calibrator fitted on ``n`` labelled rows of ``k`` classes gives
        every class at least ``1 / (n + k)``, and so at most ``(n + 1) / (n + k)``: Laplace's rule of
        succession, the most ``n`` examples can support (rows below it are mixed with the uniform
        distribution just enough, :func:`~confidently.calibration.numeric.bound_rows`). Label-free
        corrections claim no frequency of their own; their floor is ``1e-12``.

        Raises
        ------
        CalibrationError
            If the fitted state yields anything but rows of probabilities (a corrupt calibrator fails
            closed rather than hand out a number outside [0, 1]).
        """
        self._check_fitted()
        probs = check_probs(probs, n_classes=self.n_classes_)
        return bound_rows(self._checked_output(self._predict(probs), probs.shape), self._floor())

    def predict(self, probs: ArrayLike) -> np.ndarray:
        """The most probable class of each row after calibration, an array of labels from ``classes_``."""
        calibrated = self.predict_proba(probs)
        return self.classes_[np.argmax(calibrated, axis=1)]

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "n_classes_")

    @property
    def n_features_in_(self) -> int:
        """scikit-learn's name for the number of input columns, here :attr:`n_classes_`."""
        self._check_fitted()
        return self.n_classes_

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the constructor's keyword arguments (sorted, as ``get_params`` lists them)."""
        return cls._get_param_names()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description: method, parameters and fitted state (``None`` before ``fit``)."""
        state = None
        if self.is_fitted:
            state = {name: _encode(getattr(self, name)) for name in self._fitted_attributes()}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "method": self.name,
            "params": _encode(self.get_params(deep=False)),
            "state": state,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        """Rebuild a calibrator saved by :meth:`to_dict`, checking every value.

        Raises
        ------
        ArtifactError
            If ``data`` is not a calibrator of this class, or its parameters or state are incomplete,
            of the wrong type, shape or range, or give anything but probabilities on probe rows.
        """
        check_header(data)
        if data["method"] != cls.name:
            raise ArtifactError(
                f"saved calibrator is {data['method']!r}, not {cls.name!r}; "
                "use confidently.calibration.load_calibrator to load any method"
            )
        params = data.get("params")
        if not isinstance(params, Mapping):
            raise ArtifactError(f"saved {cls.name} calibrator: params must be an object; got {describe(params)}")
        unknown = sorted(set(params) - set(cls.param_names()), key=str)
        if unknown:  # named with repr: a saved key may hold any character
            raise ArtifactError(f"saved {cls.name} calibrator has bad parameters: unexpected keyword argument "
                                f"{', '.join(map(repr, unknown))}; "
                                f"it accepts: {', '.join(cls.param_names()) or 'none'}")
        try:
            calibrator = cls(**cls._params_from_json(dict(params)))
            calibrator._validate_params()
        except (TypeError, ConfidentlyError) as error:
            raise ArtifactError(f"saved {cls.name} calibrator has bad parameters: {error}") from None
        state = data.get("state")
        if state is not None:
            if not isinstance(state, Mapping):
                raise ArtifactError(f"saved {cls.name} calibrator: state must be an object; got {describe(state)}")
            calibrator._set_state(state)
            calibrator._check_loaded()
        return calibrator

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` atomically; the calibrator must be fitted."""
        self._check_fitted()
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Calibrator:
        """Read a calibrator of this class written by :meth:`save`; errors name the file."""
        try:
            return cls.from_dict(read_json(path))
        except ArtifactError as error:
            message = str(error)
            raise ArtifactError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.target_tags.required = False
        return tags

    # --- hooks for subclasses ---------------------------------------------------------------

    @abstractmethod
    def _fit(self, probs: np.ndarray, y: np.ndarray | None) -> None:
        """Learn the fitted state from validated arrays (``y``: column indices, or None)."""

    @abstractmethod
    def _predict(self, probs: np.ndarray) -> np.ndarray:
        """Calibrate validated probabilities."""

    def _check_targets(self, probs: np.ndarray, y: ArrayLike | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(classes_, y as column indices)``; label-free calibrators use ``y`` only to name classes."""
        k = probs.shape[1]
        if y is None:
            classes = getattr(self, "classes", None)
            return (np.arange(k) if classes is None else check_classes(classes, n_classes=k)), None
        classes, _ = encode_labels(y, n_samples=probs.shape[0], n_classes=k, classes=getattr(self, "classes", None))
        return classes, None

    def _floor(self) -> float:
        """The least probability an output may give a class: Laplace's ``1 / (n + k)`` on the fitting rows."""
        return float(laplace_bounds(self.n_samples_, self.n_classes_)[0])

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def _read_state(self, state: Mapping[str, Any], where: str) -> set[str]:
        """Read the method's own fitted attributes from ``state``; return the keys read.

        This default takes every remaining key as a fitted attribute of numbers (finite, never
        booleans); methods with more structure check it themselves.
        """
        names = set(state) - set(self._common_state)
        for name in names:
            if not (isinstance(name, str) and name.endswith("_") and not name.startswith("_")):
                raise ArtifactError(f"{where}: {describe(name)} is not a fitted attribute")
            setattr(self, name, read_any(state[name], f"{where}.{name}"))
        return names

    # --- internals --------------------------------------------------------------------------

    def _validate_params(self) -> None:
        for name, interval in self._constraints.items():
            interval.check(type(self).__name__, name, getattr(self, name))
        classes = getattr(self, "classes", None)
        if classes is not None:
            check_classes(classes)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise CalibratorNotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with labelled "
                "probabilities first, or load a saved calibrator."
            )

    def _fitted_attributes(self) -> list[str]:
        return sorted(k for k in vars(self) if k.endswith("_") and not k.startswith("_"))

    def _checked_output(self, out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``out`` clipped to [0, 1] if it is rows of probabilities (to rounding), else an error."""
        out = np.asarray(out, dtype=float)
        problem = None
        if out.shape != shape:
            problem = f"shape {out.shape} for input of shape {shape}"
        elif not np.all(np.isfinite(out)):
            problem = "non-finite values"
        elif out.min() < -1e-9 or out.max() > 1.0 + 1e-9:
            problem = f"values in [{out.min():.6g}, {out.max():.6g}]"
        elif np.abs(out.sum(axis=1) - 1.0).max() > 1e-6:
            problem = "rows that do not sum to 1"
        if problem:
            raise CalibrationError(
                f"{type(self).__name__} produced {problem}, not probabilities: its fitted state is corrupt; "
                "refit it or load an intact file"
            )
        return np.clip(out, 0.0, 1.0)

    def _set_state(self, state: Mapping[str, Any]) -> None:
        where = f"saved {self.name} calibrator: state"
        self.n_classes_ = read_int(state.get("n_classes_"), f"{where}.n_classes_", low=2)
        self.n_samples_ = read_int(state.get("n_samples_"), f"{where}.n_samples_", low=1)
        # files written before classes_ existed named the columns by index
        classes = state.get("classes_", list(range(self.n_classes_)))
        try:
            self.classes_ = check_classes(classes, n_classes=self.n_classes_)
        except ConfidentlyError as error:
            raise ArtifactError(f"{where}.classes_: {error}") from None
        unknown = set(state) - set(self._common_state) - self._read_state(state, where)
        if unknown:
            raise ArtifactError(f"{where} has unknown entries {sorted(map(str, unknown))}")

    def _check_loaded(self) -> None:
        """Calibrate probe rows: a corrupt state fails here, at load, not in the first request."""
        try:
            self.predict_proba(_probe_rows(self.n_classes_))
        except (ConfidentlyError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise ArtifactError(f"saved {self.name} calibrator has corrupt state: {error}") from None


class SupervisedCalibrator(Calibrator):
    """A calibrator fitted on labelled examples; refuses data it cannot learn from.

    Parameters
    ----------
    min_samples : int, default=20
        Fewest labelled examples ``fit`` accepts.
    classes : list of str or int, optional
        The label of each probability column, in column order. By default integer labels in
        ``[0, n_classes)`` are column indices and other labels name the columns in sorted order.
    """

    _constraints: ClassVar[dict[str, Interval]] = {"min_samples": Interval(int, 2)}

    def __init__(self, *, min_samples: int = 20, classes: list[str] | list[int] | None = None):
        self.min_samples = min_samples
        self.classes = classes

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _check_targets(self, probs: np.ndarray, y: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
        if y is None:
            raise CalibrationError(
                f"{type(self).__name__} needs labels y to fit: it requires y to be passed, but the target y is None"
            )
        classes, labels = encode_labels(y, n_samples=probs.shape[0], n_classes=probs.shape[1], classes=self.classes)
        counts = np.bincount(labels, minlength=probs.shape[1])
        described = ", ".join(f"class {c}: {n}" for c, n in zip(classes.tolist(), counts))
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
        return classes, labels


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

    def _read_state(self, state: Mapping[str, Any], where: str) -> set[str]:
        expected = 1 if self.n_classes_ == 2 else self.n_classes_
        maps = state.get("maps_")
        if not isinstance(maps, list) or len(maps) != expected:
            raise ArtifactError(
                f"{where}.maps_ must be a list of {expected} maps ({self.n_classes_} classes); got {describe(maps)}"
            )
        self.maps_ = [self._read_map(m, f"{where}.maps_[{j}]") for j, m in enumerate(maps)]
        return {"maps_"}

    def _read_map(self, value: Any, where: str) -> dict[str, Any]:
        """One saved map, checked (by default: an object of finite numbers and number lists)."""
        read = read_any(value, where)
        if not isinstance(read, dict):
            raise ArtifactError(f"{where} must be an object; got {describe(value)}")
        return read

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

    Subclasses differ only in which rows the bias is estimated from. Labels are never learned from:
    ``y``, if given, only names the classes, so these can be stacked under a supervised calibrator.

    Parameters
    ----------
    classes : list of str or int, optional
        The label of each probability column, in column order (default: the labels of ``y`` when
        given, else ``0, ..., n_classes - 1``).

    Attributes
    ----------
    bias_ : ndarray of shape (n_classes,)
        The estimated bias ``p̂`` (clipped to ``>= 1e-12`` so that it can be divided by).
    """

    def __init__(self, *, classes: list[str] | list[int] | None = None):
        self.classes = classes

    def _fit(self, probs: np.ndarray, y: np.ndarray | None) -> None:
        self.bias_ = np.clip(probs.mean(axis=0), EPS, None)

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        return normalise_rows(probs / self.bias_)

    def _floor(self) -> float:
        # no labels, so no frequency claimed: only keep the output off exact 0 and 1
        return EPS

    def _read_state(self, state: Mapping[str, Any], where: str) -> set[str]:
        self.bias_ = read_vector(state.get("bias_"), f"{where}.bias_", length=self.n_classes_, high=1.0, positive=True)
        return {"bias_"}


def _probe_rows(k: int) -> np.ndarray:
    """Rows a loaded calibrator must turn into probabilities: one-hot, near one-hot, uniform, random."""
    eye = np.eye(k)
    near = 0.999999 * eye + 0.000001 / k
    random = np.random.default_rng(0).dirichlet(np.full(k, 0.5), size=32)
    return np.vstack([eye, near, np.full((1, k), 1.0 / k), random])


def check_header(data: Any) -> None:
    check_depth(data)
    check_format(data, format=FORMAT, version=FORMAT_VERSION, what="calibrator")
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
