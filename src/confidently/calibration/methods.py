"""The single-step calibration methods by name, and loading one from its saved form.

:class:`~confidently.calibration.stacked.StackedCalibrator` chains these; it reads its saved steps
through :func:`step_from_dict`, so a stack never depends on the registry that lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confidently.calibration.base import Calibrator, check_header
from confidently.calibration.batch import BatchCalibrator
from confidently.calibration.beta import BetaCalibrator
from confidently.calibration.contextual import ContextualCalibrator
from confidently.calibration.dirichlet import DirichletCalibrator
from confidently.calibration.histogram import HistogramBinningCalibrator
from confidently.calibration.isotonic import IsotonicCalibrator
from confidently.calibration.platt import PlattCalibrator
from confidently.calibration.temperature import TemperatureCalibrator
from confidently.errors import ArtifactError

#: Every single-step method by the name used on the command line and in saved files.
STEP_CALIBRATORS: dict[str, type[Calibrator]] = {
    cls.name: cls
    for cls in (
        PlattCalibrator,
        IsotonicCalibrator,
        TemperatureCalibrator,
        HistogramBinningCalibrator,
        BetaCalibrator,
        DirichletCalibrator,
        ContextualCalibrator,
        BatchCalibrator,
    )
}


def step_from_dict(data: Mapping[str, Any]) -> Calibrator:
    """Rebuild a single-step calibrator from :meth:`Calibrator.to_dict` output."""
    check_header(data)
    if data["method"] == "stacked":  # refused when built too: a saved stack is always flat
        raise ArtifactError("a stacked calibrator's step is itself stacked; list its steps in one stack instead")
    cls = STEP_CALIBRATORS.get(data["method"])
    if cls is None:
        raise ArtifactError(f"saved calibrator has unknown method {data['method']!r}")
    return cls.from_dict(data)
