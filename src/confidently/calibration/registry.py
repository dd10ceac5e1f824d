"""Calibration methods by name: build one, or load a saved one whatever its method."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confidently.calibration.base import Calibrator, check_header
from confidently.calibration.methods import STEP_CALIBRATORS
from confidently.calibration.stacked import StackedCalibrator
from confidently.errors import ArtifactError, CalibrationError
from confidently.files import read_artifact

#: Every calibration method by the name used on the command line and in saved files.
CALIBRATORS: dict[str, type[Calibrator]] = {**STEP_CALIBRATORS, StackedCalibrator.name: StackedCalibrator}


def make_calibrator(name: str, **params: Any) -> Calibrator:
    """A new, unfitted calibrator by method name.

    ``"first+then"`` (e.g. ``"batch+platt"``) builds a :class:`StackedCalibrator` of the named
    methods; ``params`` then go to the last one.

    Raises
    ------
    CalibrationError
        If a name is unknown or a parameter is not accepted by the method.
    """
    if "+" in name:
        *firsts, last = name.split("+")
        return StackedCalibrator(steps=[*(make_calibrator(n) for n in firsts), make_calibrator(last, **params)])
    if name not in CALIBRATORS:
        raise CalibrationError(f"unknown calibration method {name!r}; choose one of {', '.join(CALIBRATORS)}")
    cls = CALIBRATORS[name]
    try:
        return cls(**params)
    except TypeError:
        accepted = ", ".join(cls.param_names()) or "none"
        raise CalibrationError(
            f"calibration method {name!r} got parameters {sorted(params)}; it accepts: {accepted}"
        ) from None


def calibrator_from_dict(data: Mapping[str, Any]) -> Calibrator:
    """Rebuild any calibrator from :meth:`Calibrator.to_dict` output, dispatching on its method."""
    check_header(data)
    cls = CALIBRATORS.get(data["method"])
    if cls is None:
        raise ArtifactError(f"saved calibrator has unknown method {data['method']!r}")
    return cls.from_dict(data)


def load_calibrator(path: str | Path) -> Calibrator:
    """Load a calibrator saved with :meth:`Calibrator.save`, whatever its method."""
    return read_artifact(path, calibrator_from_dict)
