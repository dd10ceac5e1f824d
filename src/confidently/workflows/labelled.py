"""What labels show of scored rows: shares with exact intervals over all rows, and again on the rows a bundle
never saw (:mod:`confidently.bundle.seen`), so figures on texts it was fitted on are not taken for out-of-sample.

``score`` and ``compare`` state both the same way: :func:`labelled_figures` per scored frame,
:class:`SeenRows` for what the bundle saw, :func:`figures_text` for the words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from confidently.bundle.seen import SeenOverlap, SeenTexts
from confidently.decision.exact_share import ExactShare

if TYPE_CHECKING:
    import pandas as pd

    from confidently.bundle.bundle import Bundle

#: Each figure of :func:`labelled_figures` in words, in the order they are stated.
FIGURE_WORDS = {"raw_accuracy": "raw accuracy {}", "calibrated_accuracy": "calibrated accuracy {}",
                "set_coverage": "{} of sets hold the label"}


def labelled_figures(frame: pd.DataFrame, truth: Sequence[str]) -> dict[str, dict]:
    """What a scored file's labels show: raw and (with a bundle) calibrated accuracy, and the share of
    prediction sets that hold the label, each as :meth:`ExactShare.to_dict` (exact Clopper-Pearson 95%).
    ``frame`` has :func:`~confidently.workflows.score_file.score_file`'s columns (``raw_prediction``, and
    ``calibrated_prediction`` and ``prediction_set`` when a bundle gives them), ``truth`` the task's label per row."""
    truth = list(truth)
    if not truth:
        return {}

    def share(k: int) -> dict:
        return ExactShare(int(k), len(truth)).to_dict()

    figures = {"raw_accuracy": share((frame["raw_prediction"] == truth).sum())}
    if "calibrated_prediction" in frame:
        figures["calibrated_accuracy"] = share((frame["calibrated_prediction"] == truth).sum())
    if "prediction_set" in frame:
        figures["set_coverage"] = share(sum(label in labels for label, labels in zip(truth, frame["prediction_set"])))
    return figures


def figure_text(figure: dict) -> str:
    """One figure of :func:`labelled_figures` as :meth:`ExactShare.text` writes it."""
    return ExactShare(figure["k"], figure["n"]).text()


def figures_text(figures: dict[str, dict]) -> str:
    """``'raw accuracy 75.0% (6/8, exact 95% CI …), calibrated accuracy …'``: the figures present, in words."""
    return ", ".join(form.format(figure_text(figures[name])) for name, form in FIGURE_WORDS.items() if name in figures)


@dataclass(frozen=True)
class SeenRows:
    """Which of some labelled rows a bundle was fitted on or saw: ``record`` is its :data:`SEEN_FILE` (None
    when the bundle keeps none: unknown), ``overlap`` the rows it saw (None when unknown)."""

    record: SeenTexts | None
    overlap: SeenOverlap | None

    @classmethod
    def of(cls, bundle: Bundle, texts: Sequence[str]) -> SeenRows:
        record = SeenTexts.from_bundle(bundle)
        return cls(record, None if record is None else record.overlap(texts))

    @property
    def n_seen(self) -> int:
        """How many rows the bundle saw (0 when unknown)."""
        return 0 if self.overlap is None else self.overlap.n_seen

    @property
    def n_unseen(self) -> int:
        return 0 if self.overlap is None else int((~self.overlap.seen).sum())

    def to_dict(self) -> dict[str, Any] | str:
        """The JSON record: ``{"n_rows", "by_role", "notes"}``, or ``"unknown"`` without a :data:`SEEN_FILE`."""
        if self.record is None:
            return "unknown"
        return {"n_rows": self.n_seen, "by_role": self.overlap.by_role, "notes": list(self.record.notes)}

    def unseen_figures(self, frame: pd.DataFrame, truth: Sequence[str]) -> dict[str, Any] | None:
        """:func:`labelled_figures` on the rows the bundle never saw, with their count as ``rows``; None when
        it saw none of the rows, or does not record what it saw (the figures over all rows already are these)."""
        if not self.n_seen:
            return None
        unseen = ~self.overlap.seen
        figures = labelled_figures(frame[unseen], [t for t, keep in zip(truth, unseen) if keep])
        return {"rows": int(np.sum(unseen)), **figures}
