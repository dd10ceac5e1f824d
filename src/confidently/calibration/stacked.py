"""A chain of calibrators, each applied to the output of the one before."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.base import Calibrator, clone
from confidently.calibration.methods import step_from_dict
from confidently.calibration.state import describe
from confidently.calibration.validation import check_classes, encode_labels
from confidently.errors import ArtifactError, CalibrationError, NotFittedError


class StackedCalibrator(Calibrator):
    """Apply ``steps`` in order: ``q = step_m(... step_2(step_1(p)))``.

    The usual stack is a label-free correction under a supervised calibrator, e.g.
    ``StackedCalibrator(steps=[BatchCalibrator(), PlattCalibrator()])``. ``fit(probs, y)`` goes
    through the steps in order and passes each one's output to the next:

    * a step that is already fitted is used as it is (a copy of it, so refitting the original later
      does not change the stack); this is how a :class:`ContextualCalibrator` fitted on content-free
      inputs enters a stack;
    * an unfitted step is fitted on the current probabilities (and ``y``, which label-free steps
      ignore); a copy is fitted, the step given is left untouched, so ``fit`` can be called again;
    * an unfitted :class:`ContextualCalibrator` is refused: it must be fitted on content-free
      inputs, not on the task's rows.

    As in a scikit-learn ``Pipeline``, ``get_params(deep=True)`` names each step after its method
    (``"batch"``, ``"platt"``; a method used twice is numbered, ``"platt-1"``, ``"platt-2"``), so
    ``set_params(platt__min_samples=50)`` or a grid over ``"platt__min_samples"`` reaches a step, and
    ``set_params(platt=IsotonicCalibrator())`` replaces it. ``sklearn.base.clone`` gives unfitted
    copies of the steps, except a fitted :class:`ContextualCalibrator`, which keeps its fit.

    No output is below the floor of the strictest step (see :meth:`Calibrator.predict_proba`).

    Parameters
    ----------
    steps : sequence of Calibrator
        At least one calibrator.
    classes : list of str or int, optional
        The label of each probability column (see
        :func:`~confidently.calibration.validation.encode_labels`); the steps see column indices.

    Attributes
    ----------
    steps_ : list of Calibrator
        The fitted steps.
    """

    name = "stacked"

    def __init__(self, *, steps: Sequence[Calibrator], classes: list[str] | list[int] | None = None):
        self.steps = steps
        self.classes = classes

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=False)
        if deep and _is_step_list(self.steps):
            for name, step in _named(self.steps):
                if not isinstance(step, Calibrator):
                    continue  # refused by fit; listing it is all get_params can do
                params[name] = step
                params.update({f"{name}__{key}": value for key, value in step.get_params(deep=True).items()})
        return params

    def set_params(self, **params: Any) -> StackedCalibrator:
        if "steps" in params:
            self.steps = params.pop("steps")
        names = [name for name, _ in _named(self.steps)] if _is_step_list(self.steps) else []
        replaced = {name: params.pop(name) for name in list(params) if name in names}
        if replaced:
            self.steps = [replaced.get(name, step) for name, step in zip(names, self.steps)]
        return super().set_params(**params) if params else self

    def _validate_params(self) -> None:
        if not _is_step_list(self.steps):
            raise CalibrationError("StackedCalibrator: steps must be a non-empty list of calibrators")
        for i, step in enumerate(self.steps):
            if not isinstance(step, Calibrator):
                raise CalibrationError(f"StackedCalibrator: steps[{i}] is {step!r}, not a calibrator")
            if isinstance(step, StackedCalibrator):
                raise CalibrationError(f"StackedCalibrator: steps[{i}] is itself a stack; list its steps in one stack")
        if self.classes is not None:
            check_classes(self.classes)

    def _check_targets(self, probs: np.ndarray, y: ArrayLike | None) -> tuple[np.ndarray, np.ndarray | None]:
        # each step checks its own requirements (min_samples, classes) when it is fitted
        if y is None:
            return super()._check_targets(probs, None)
        return encode_labels(y, n_samples=probs.shape[0], n_classes=probs.shape[1], classes=self.classes)

    def _fit(self, probs: np.ndarray, y: np.ndarray | None) -> None:
        fitted = []
        for i, step in enumerate(self.steps):
            if step.is_fitted:
                current = copy.deepcopy(step)
            elif not step.fits_on_batch:
                raise NotFittedError(
                    f"StackedCalibrator: steps[{i}] ({type(step).__name__}) must be fitted before "
                    "stacking (a contextual calibrator is fitted on content-free inputs)"
                )
            else:
                current = clone(step).fit(probs, y)
            probs = current.predict_proba(probs)
            fitted.append(current)
        self.steps_ = fitted

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        for step in self.steps_:
            probs = step.predict_proba(probs)
        return probs

    def _floor(self) -> float:
        return max(step._floor() for step in self.steps_)

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "steps": _steps_from_json(params.get("steps"), "params.steps")}

    def _read_state(self, state: Mapping[str, Any], where: str) -> set[str]:
        steps = _steps_from_json(state.get("steps_"), f"{where}.steps_")
        for i, step in enumerate(steps):
            if not step.is_fitted:
                raise ArtifactError(f"{where}.steps_[{i}]: a fitted stack holds an unfitted step")
            if step.n_classes_ != self.n_classes_:
                raise ArtifactError(
                    f"{where}.steps_[{i}] was fitted on {step.n_classes_} classes, the stack on {self.n_classes_}"
                )
        self.steps_ = steps
        return {"steps_"}


def _is_step_list(steps: Any) -> bool:
    return isinstance(steps, Sequence) and not isinstance(steps, (str, bytes)) and len(steps) > 0


def _named(steps: Sequence[Calibrator]) -> list[tuple[str, Calibrator]]:
    """Each step under its method name, numbered when a method repeats (as ``make_pipeline`` names)."""
    names = [getattr(step, "name", type(step).__name__.lower()) for step in steps]
    repeated = {name for name in names if names.count(name) > 1}
    seen: dict[str, int] = {}
    out = []
    for name, step in zip(names, steps):
        if name in repeated:
            seen[name] = seen.get(name, 0) + 1
            name = f"{name}-{seen[name]}"
        out.append((name, step))
    return out


def _steps_from_json(steps: Any, where: str) -> list[Calibrator]:
    if not isinstance(steps, list) or not steps:
        raise ArtifactError(f"saved stacked calibrator: {where} must be a non-empty list; got {describe(steps)}")
    return [step_from_dict(step) for step in steps]
