"""Live accuracy of automated decisions, measured on the audit sample.

A random share of the texts the policy automated is sent to review anyway (the *audit sample*).
Because the sample is random, the share a reviewer confirms is an unbiased estimate of the accuracy
of all automated decisions; :class:`LiveAccuracy` gives it with one-sided Clopper–Pearson bounds at
``level`` (together a two-sided interval at ``2 * level - 1``) and one of three verdicts against the
accuracy the policy was certified for: ``ok`` when the lower bound reaches the target (the audits
confirm it, the test the certificate passed on the calibration rows), ``below target`` when the upper
bound is under it (the audits show automation misses it: the alarm), and ``unconfirmed`` in between.
The alarm needs evidence of a miss, not the absence of proof: 49 right of 50 audits has a lower bound
of 0.909, which cannot confirm a 95% target, but nothing suggests automation misses it either.
Before ``min_n`` audited texts there is no verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from confidently.decision.binomial import clopper_pearson_lower

#: Audited texts needed before the live accuracy gets a verdict.
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
    status : ``no target``, ``too few audited texts``, ``ok`` (lower bound >= target), ``unconfirmed``
        (lower bound < target <= upper bound) or ``below target`` (upper bound < target).
    alarm : True when ``status`` is ``below target`` (with ``n >= min_n``).
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
            status = "ok" if lower >= target else ("below target" if upper < target else "unconfirmed")
        return cls(n, correct, accuracy, lower, upper, level, target, min_n, status, status == "below target")

    def describe(self) -> str:
        if self.n == 0:
            return "no audited automated texts labelled yet"
        return (f"accuracy of automated decisions {self.accuracy:.3f} on {self.n} audited texts "
                f"({self.level:.0%} one-sided Clopper-Pearson bounds {self.lower:.3f}-{self.upper:.3f}; "
                f"target {self.target if self.target is not None else 'none'}): {self._verdict()}")

    def _verdict(self) -> str:
        if self.status == "ok":
            return f"ok: the lower bound {self.lower:.3f} reaches {self.target:g}"
        if self.status == "unconfirmed":
            return (f"unconfirmed: {self.target:g} lies between the bounds, so the audits neither confirm the target "
                    "nor show that automation misses it")
        if self.status == "below target":
            return f"below target: the upper bound {self.upper:.3f} is under {self.target:g}"
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
