"""A chain of calibrators, each applied to the output of the one before."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.base import Calibrator, clone
from confidently.calibration.validation import check_labels
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

    Parameters
    ----------
    steps : sequence of Calibrator
        At least one calibrator.

    Attributes
    ----------
    steps_ : list of Calibrator
        The fitted steps.
    """

    name = "stacked"

    def __init__(self, *, steps: Sequence[Calibrator]):
        self.steps = steps

    def _validate_params(self) -> None:
        if isinstance(self.steps, (str, bytes)) or not isinstance(self.steps, Sequence) or not self.steps:
            raise CalibrationError("StackedCalibrator: steps must be a non-empty list of calibrators")
        for i, step in enumerate(self.steps):
            if not isinstance(step, Calibrator):
                raise CalibrationError(f"StackedCalibrator: steps[{i}] is {step!r}, not a calibrator")

    def _check_targets(self, probs: np.ndarray, y: ArrayLike | None) -> np.ndarray | None:
        # each step checks its own requirements (min_samples, classes) when it is fitted
        if y is None:
            return None
        return check_labels(y, n_samples=probs.shape[0], n_classes=probs.shape[1])

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

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "steps": _steps_from_json(params.get("steps"))}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        super()._set_state({key: value for key, value in state.items() if key != "steps_"})
        self.steps_ = _steps_from_json(state.get("steps_"))
        if not all(step.is_fitted for step in self.steps_):
            raise ArtifactError("saved stacked calibrator: a fitted stack holds an unfitted step")


def _steps_from_json(steps: Any) -> list[Calibrator]:
    from confidently.calibration.registry import calibrator_from_dict  # the registry imports this module

    if not isinstance(steps, list) or not steps:
        raise ArtifactError("saved stacked calibrator: steps must be a non-empty list")
    return [calibrator_from_dict(step) for step in steps]
