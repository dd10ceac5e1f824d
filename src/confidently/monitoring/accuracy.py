"""Live accuracy of automated decisions, measured on the audit sample.

A random share of the texts the policy automated is sent to review anyway (the *audit sample*).
Because the sample is random, the share a reviewer confirms is an unbiased estimate of the accuracy
of all automated decisions; :class:`LiveAccuracy` gives it with one-sided Clopper–Pearson bounds at
``level`` (together a two-sided interval at ``2 * level - 1``), and raises an alarm when the lower
bound is below the accuracy the policy was certified for, the same test the certificate passed on
the calibration rows. Before ``min_n`` audited texts there is no alarm: the bound is then far below
any useful target whatever the accuracy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from confidently.decision.binomial import clopper_pearson_lower

#: Audited texts needed before the accuracy can raise an alarm.
MIN_AUDITED = 20


@dataclass(frozen=True)
class LiveAccuracy:
    """Accuracy of automated decisions on the audited texts of one adapter (and bundle version).

    Attributes
    ----------
    n : audited automated texts that have a reviewer's label.
    correct : of those, how many the model got right.
    accuracy : ``correct / n`` (None when ``n`` is 0).
    lower, upper : one-sided Clopper–Pearson bounds at ``level`` (None when ``n`` is 0).
    level : confidence level of each bound.
    target : the policy's target accuracy (None without one).
    status : ``no target``, ``too few audited texts``, ``ok`` or ``below target``.
    alarm : True when ``status`` is ``below target`` (lower bound < target, with ``n >= min_n``).
    """

    n: int
    correct: int
    accuracy: float | None
    lower: float | None
    upper: float | None
    level: float
    target: float | None
    min_n: int
    status: str
    alarm: bool

    @classmethod
    def from_counts(cls, correct: int, n: int, *, target: float | None, level: float = 0.95,
                    min_n: int = MIN_AUDITED) -> LiveAccuracy:
        if n == 0:
            accuracy = lower = upper = None
        else:
            accuracy = correct / n
            lower = float(clopper_pearson_lower(correct, n, level))
            upper = 1.0 - float(clopper_pearson_lower(n - correct, n, level))
        if target is None:
            status = "no target"
        elif n < min_n:
            status = "too few audited texts"
        else:
            status = "below target" if lower < target else "ok"
        return cls(n, correct, accuracy, lower, upper, level, target, min_n, status, status == "below target")

    def describe(self) -> str:
        if self.n == 0:
            return "no audited automated texts labelled yet"
        # "below target" alone reads as if the accuracy were under it; the alarm means it is not shown to
        # reach it (the lower bound is under it), which an accuracy above the target can also give.
        status = (f"below target: the lower bound {self.lower:.3f} is under {self.target:g}, so the audits do not show "
                  "that automation still meets it" if self.alarm else self.status)
        return (f"accuracy of automated decisions {self.accuracy:.3f} on {self.n} audited texts "
                f"({self.level:.0%} one-sided Clopper-Pearson bounds {self.lower:.3f}-{self.upper:.3f}; "
                f"target {self.target if self.target is not None else 'none'}): {status}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
