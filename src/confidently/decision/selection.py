"""Which calibration method ships: the rule that chooses it among the candidates, and the level each
candidate's threshold is certified at so that the chosen one keeps its guarantee.

* ``"log-loss"`` (the default): the lowest cross-fitted negative log-likelihood, a proper scoring rule;
  every candidate is certified at the study's level ``1 - delta``.
* ``"coverage"``: what a user buys is the share automated at the guaranteed accuracy, so every candidate
  certifies its threshold at ``1 - delta / M`` (``M`` candidates) and the one whose certificate automates
  the largest share of its out-of-fold calibration rows wins (ties: the lower log-loss). The chance that
  *any* of the ``M`` certificates is wrong is at most ``M * delta / M = delta`` (the union bound, whatever
  their dependence), so the chosen one, picked by looking at all of them, is wrong with probability at
  most ``delta``: its guarantee is stated at ``1 - delta``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confidently.decision.thresholds import CertifiedThreshold
from confidently.defaults import SELECT_BY_COVERAGE, SELECT_BY_LOG_LOSS, SELECTION_RULES
from confidently.errors import ConfigError


def selection_problem(rule: object) -> str | None:
    """What is wrong with ``rule`` as a selection rule, or None when it is one of :data:`SELECTION_RULES`."""
    if rule in SELECTION_RULES:
        return None
    return f"select_by must be one of {', '.join(SELECTION_RULES)}; got {rule!r}"


def per_method_level(rule: str, level: float, n_candidates: int) -> float:
    """The level each candidate's threshold is certified at: ``level`` for ``"log-loss"``, and
    ``1 - (1 - level) / n_candidates`` (Bonferroni) for ``"coverage"``."""
    if problem := selection_problem(rule):
        raise ConfigError(problem)
    if rule == SELECT_BY_COVERAGE:
        return 1.0 - (1.0 - level) / max(n_candidates, 1)
    return level


def select_method(rule: str, nll: Mapping[str, float], certificates: Mapping[str, CertifiedThreshold]) -> str:
    """The candidate ``rule`` ships, among the keys of ``nll`` (cross-fitted log-loss of each candidate).

    ``certificates`` holds each candidate's threshold certified at :func:`per_method_level`; ``"coverage"``
    ranks by the share it automates (0 when none was certified), then by the lower log-loss, then by the
    order of ``nll``.
    """
    if problem := selection_problem(rule):
        raise ConfigError(problem)
    if rule == SELECT_BY_LOG_LOSS:
        return min(nll, key=lambda name: nll[name])
    return min(nll, key=lambda name: (-certificates[name].coverage, nll[name]))


@dataclass(frozen=True)
class Selection:
    """How the shipped method was chosen.

    Attributes
    ----------
    rule : str
        ``"log-loss"`` or ``"coverage"`` (:data:`~confidently.defaults.SELECTION_RULES`).
    candidates : tuple of str
        The methods it chose among (``M`` of them).
    chosen : str
    level : float
        Confidence ``1 - delta`` of the shipped threshold's guarantee.
    level_per_method : float
        The level every candidate's threshold was certified at (``1 - delta / M`` for ``"coverage"``).
    n_rows, n_splits : int
        Calibration rows and cross-fitting folds the choice was made on.
    """

    rule: str
    candidates: tuple[str, ...]
    chosen: str
    level: float
    level_per_method: float
    n_rows: int
    n_splits: int

    def describe(self) -> str:
        """The rule in one sentence (report, metrics.json, the manifest and the policy's audit trail)."""
        where = f"on the calibration split's cross-fitted scores ({self.n_rows} rows, {self.n_splits} folds)"
        if self.rule == SELECT_BY_LOG_LOSS:
            return (f"{self.chosen} chosen among {len(self.candidates)} methods by the lowest cross-fitted negative "
                    f"log-likelihood {where}")
        delta = 1.0 - self.level
        return (f"{self.chosen} chosen among M = {len(self.candidates)} methods by the largest share automated by "
                f"its certified threshold {where}, ties broken by the lower log-loss; every method's threshold was "
                f"certified at level {self.level_per_method:.4g} (delta/M = {delta:.3g}/{len(self.candidates)}), so "
                f"by the union bound the chosen one holds at {self.level:.0%} whichever was chosen")

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "candidates": list(self.candidates), "n_candidates": len(self.candidates),
                "chosen": self.chosen, "level": self.level, "level_per_method": self.level_per_method,
                "n_rows": self.n_rows, "n_splits": self.n_splits, "how": self.describe()}
