"""Canaries: golden prompts whose raw class probabilities were recorded when the calibrator was fitted.

A calibrator only holds for the scores it was fitted on. An adapter that silently does nothing, an
adapter loaded on other base weights, or a serving engine that computes differently (another
precision, another version) all change those scores without any error. A :class:`Canary` is a
stratified sample of the calibration rows with the raw class probabilities they had; re-scoring it
on any backend (:func:`check_canary`) and comparing shows whether the model in front of you is the
one the calibrator was fitted for.

Deviation is measured on raw class probabilities (shares of the label mass), text by text:
``max |p_now - p_then|`` over the classes; the check reports the largest and the mean over texts
and passes when the largest is within the tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_probs
from confidently.errors import ArtifactError, DataError
from confidently.tasks.task import Task
from confidently.files import check_format

if TYPE_CHECKING:
    from confidently.bundle.bundle import Bundle

CANARY_FILE = "canary.json"
CANARY_FORMAT = "confidently.canary"
CANARY_FORMAT_VERSION = 1
#: Texts in a canary: enough to catch a changed model, few enough to score at every start-up.
DEFAULT_SIZE = 32
#: Largest raw-probability change accepted. Measured on gemma-3-270m (CPU, the 32-text canary of a
#: 100-row calibration split, benchmarks/production_loop.py): re-scored in float32 it moves by at most
#: 1.8e-6; in bfloat16 by up to 0.025 (mean 0.009), which fails, so calibrate in the precision you
#: serve. A no-op or misplaced adapter moves far more.
DEFAULT_TOLERANCE = 0.02


class CanaryFailedError(ArtifactError):
    """The re-scored canary moved further than its tolerance: the calibrator does not hold for this model."""


@dataclass(frozen=True)
class Canary:
    """Golden prompts and their recorded raw class probabilities.

    Attributes
    ----------
    task : the task they were scored with (prompt template, labels, label words); ``chat`` its chat choice.
    texts : the golden texts.
    true_labels : their labels in the calibration data (the sample is stratified on them).
    probs : array of shape (n_texts, n_labels): raw class probabilities when recorded.
    tolerance : largest accepted deviation (see the module docstring).
    scored_with : what produced ``probs`` (model name, weights id, adapter hash, dtype), for the report.
    """

    task: Task
    chat: bool | None
    texts: tuple[str, ...]
    true_labels: tuple[str, ...]
    probs: np.ndarray
    tolerance: float = DEFAULT_TOLERANCE
    scored_with: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def select(cls, texts: Sequence[str], y: ArrayLike, probs: ArrayLike, *, task: Task, chat: bool | None = None,
               size: int = DEFAULT_SIZE, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE,
               scored_with: Mapping[str, Any] | None = None) -> Canary:
        """A stratified sample of ``size`` calibration rows: labels taken in turn, rows at random within each.

        Parameters
        ----------
        texts, y, probs : the calibration rows: texts, label indices (n,) and raw class probabilities (n, k).
        """
        raw = check_probs(probs, n_classes=len(task.labels))
        labels = np.asarray(y)
        if len(texts) != len(raw) or labels.shape != (len(raw),):
            raise DataError(f"need one text and one label per row: {len(texts)} texts, {labels.shape[0]} labels, "
                            f"{len(raw)} rows of probabilities")
        if not 0 < tolerance < 1:
            raise DataError(f"tolerance must be in (0, 1); got {tolerance!r}")
        rng = np.random.default_rng(seed)
        pools = [list(rng.permutation(np.flatnonzero(labels == k))) for k in range(len(task.labels))]
        chosen: list[int] = []
        while len(chosen) < min(size, len(raw)):
            for pool in pools:
                if pool and len(chosen) < size:
                    chosen.append(int(pool.pop()))
        return cls(task, chat, tuple(texts[i] for i in chosen), tuple(task.label_names[labels[i]] for i in chosen),
                   raw[chosen], tolerance, dict(scored_with or {}))

    def check(self, probs_now: ArrayLike) -> CanaryCheck:
        """Compare the probabilities the texts get now with the recorded ones."""
        now = check_probs(probs_now, n_classes=len(self.task.labels), name="re-scored canary probabilities")
        if now.shape != self.probs.shape:
            raise DataError(f"re-scored {now.shape[0]} canary texts, the canary has {len(self.texts)}")
        per_text = np.abs(now - self.probs).max(axis=1)
        worst = int(per_text.argmax())
        agreement = float(np.mean(now.argmax(axis=1) == self.probs.argmax(axis=1)))
        return CanaryCheck(n=len(self.texts), max_deviation=float(per_text.max()),
                           mean_deviation=float(per_text.mean()), tolerance=self.tolerance,
                           label_agreement=agreement, worst_text=self.texts[worst],
                           passed=bool(per_text.max() <= self.tolerance))

    def to_dict(self) -> dict[str, Any]:
        return {"format": CANARY_FORMAT, "format_version": CANARY_FORMAT_VERSION, "task": self.task.to_dict(),
                "chat": self.chat, "tolerance": self.tolerance, "scored_with": dict(self.scored_with),
                "deviation": "per text max |p_now - p_then| over raw class probabilities; pass when the "
                             "largest is within the tolerance",
                "rows": [{"text": t, "label": y, "probs": p} for t, y, p in
                         zip(self.texts, self.true_labels, self.probs.tolist())]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Canary:
        check_format(data, format=CANARY_FORMAT, version=CANARY_FORMAT_VERSION, what="canary")
        try:
            task = Task.from_dict(data["task"])
            rows = data["rows"]
            canary = cls(task, data.get("chat"), tuple(str(r["text"]) for r in rows),
                         tuple(str(r["label"]) for r in rows), np.array([r["probs"] for r in rows], dtype=float),
                         float(data["tolerance"]), dict(data.get("scored_with") or {}))
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactError(f"malformed canary: {type(error).__name__}: {error}") from None
        if not canary.texts:
            raise ArtifactError("malformed canary: no rows")
        check_probs(canary.probs, n_classes=len(task.labels), name="canary probs")
        return canary

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> Canary | None:
        """The canary ``bundle`` carries (its hash-checked ``canary.json``), or None if it has none."""
        if CANARY_FILE not in bundle.extras:
            return None
        try:
            return cls.from_dict(bundle.extras[CANARY_FILE])
        except (ArtifactError, DataError) as error:
            raise ArtifactError(f"{bundle.folder / CANARY_FILE}: {error}") from None


@dataclass(frozen=True)
class CanaryCheck:
    """How far the re-scored canary moved (see the module docstring)."""

    n: int
    max_deviation: float
    mean_deviation: float
    tolerance: float
    label_agreement: float
    worst_text: str
    passed: bool

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"canary {verdict}: max deviation {self.max_deviation:.4g} (tolerance {self.tolerance:g}), mean "
                f"{self.mean_deviation:.4g} over {self.n} texts; top label unchanged on {self.label_agreement:.0%}")

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}
