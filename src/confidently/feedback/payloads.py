"""What the production loop needs stored beside a calibrator, computed from the calibration rows.

``evaluate`` and ``finetune`` pass :func:`production_payloads` to
:func:`~confidently.bundle.bundle.write_bundle` (``extra_json`` and ``extra_files``), so each is hashed in the
manifest and read back only through :func:`~confidently.bundle.bundle.read_bundle` (``Bundle.extras``):
``canary.json`` (golden prompts, checked by ``confidently canary`` and when ``serve`` loads the bundle),
``reference.json`` (the distribution drift is measured against) and ``calibration_rows.json`` (what
``confidently recalibrate`` refits on), with ``calibration_features.safetensors`` beside it when the
calibrator reads features (a hidden-state probe, a prompt ensemble's combiner).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from confidently.monitoring.canary import CANARY_FILE, DEFAULT_SIZE, Canary
from confidently.monitoring.reference import REFERENCE_FILE, Reference
from confidently.decision.decisions import reads_hidden
from confidently.feedback.recalibration import CALIBRATION_ROWS_FILE, CalibrationRows
from confidently.tasks.task import Task

if TYPE_CHECKING:
    from confidently.calibration import Calibrator
    from confidently.decision.conformal import ConformalPredictor
    from confidently.decision.policy import DecisionPolicy


@dataclass(frozen=True)
class ProductionPayloads:
    """What the production loop needs in a bundle: ``json`` for ``write_bundle(extra_json=...)``, ``files``
    (name -> writer) for ``write_bundle(extra_files=...)``; both are hashed in the manifest."""

    json: dict[str, dict[str, Any]]
    files: dict[str, Callable[[Path], None]]


def production_payloads(texts: Sequence[str], y: ArrayLike, probs: ArrayLike, other_mass: ArrayLike, *,
                        task: Task, chat: bool | None, calibrator: Calibrator | None,
                        policy: DecisionPolicy | None, scored_with: Mapping[str, Any], source: str,
                        canary_size: int = DEFAULT_SIZE, seed: int = 0,
                        hidden: ArrayLike | None = None, truncated: ArrayLike | None = None,
                        prediction_sets: ConformalPredictor | None = None, decision_rule: str = "threshold",
                        groups: Sequence | None = None) -> ProductionPayloads:
    """The canary, reference and calibration rows for the rows ``texts``, label indices ``y``, raw class
    probabilities ``probs`` (n, k) and ``other_mass`` (n,), scored by the model ``scored_with`` describes.

    Parameters
    ----------
    scored_with : what produced ``probs`` (:meth:`ModelIdentity.to_dict`), recorded in the canary for its report.
    source : how the rows were obtained (file, split), for the reference's audit trail.
    hidden : the rows' features (:attr:`Scores.hidden`: final hidden states, or every prompt's class masses),
        needed when ``calibrator`` reads them (a hidden-state probe, a prompt ensemble's combiner); they are
        then kept with the calibration rows, so ``recalibrate`` can refit it.
    truncated : one bool per row (:attr:`Scores.truncated`): the text was cut to fit. Kept with the calibration
        rows (``recalibrate`` certifies them as reviewed), and decided ``review`` in the reference; None: not
        recorded.
    prediction_sets, decision_rule, groups : the bundle's prediction sets, decision rule and each row's value
        of the sets' group column (sets fitted per slice): the reference's decisions are made as the server
        makes them (:meth:`Reference.from_scores`).
    """
    raw = np.asarray(probs, dtype=float)
    labels = np.asarray(y)
    cut = None if truncated is None else np.asarray(truncated, dtype=bool)
    canary = Canary.select(texts, labels, raw, task=task, chat=chat, size=canary_size, seed=seed,
                           scored_with=scored_with)
    reference = Reference.from_scores(raw, other_mass, labels=task.label_names, calibrator=calibrator,
                                      policy=policy, source=source, hidden=hidden, truncated=cut,
                                      prediction_sets=prediction_sets, rule=decision_rule, groups=groups)
    features = np.asarray(hidden, dtype=np.float32) if reads_hidden(calibrator) else None
    rows = CalibrationRows(task.label_names, raw, labels, np.asarray(other_mass, dtype=float), features, cut)
    return ProductionPayloads({CANARY_FILE: canary.to_dict(), REFERENCE_FILE: reference.to_dict(),
                               CALIBRATION_ROWS_FILE: rows.to_dict()}, rows.feature_files())
