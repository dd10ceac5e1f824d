"""Live accuracy of automated decisions, measured on the audit sample.

A random share of the texts the policy automated is sent to review anyway (the *audit sample*).
Because the sample is random, the share a reviewer confirms is an unbiased estimate of the accuracy
of all automated decisions. :class:`LiveAccuracy` is recomputed after every audited text, so its
bounds are an anytime-valid confidence sequence at ``level``
(:func:`~confidently.monitoring.sequence.confidence_sequence`): with probability >= ``level`` the true
accuracy lies between them at every look of the whole deployment, not only at one look chosen in
advance. A fixed-n Clopper–Pearson bound checked after every audit would cross the target by chance
sooner or later: of 2,000 simulated deployments at exactly the target, looked at after each of 3,000
audits, 34.6% raised the alarm on it, 0.75% on the sequence (tests/monitoring/test_accuracy.py).

The verdict against the accuracy the policy was certified for: ``ok`` when the lower bound reaches
the target (the audits confirm it), ``below target`` when the upper bound is under it (the audits show
automation misses it: the alarm), and ``unconfirmed`` in between. The alarm needs evidence of a miss,
not the absence of proof: 49 right of 50 audits has a lower bound of 0.831, which cannot confirm a 95%
target, but nothing suggests automation misses it either. Over the whole deployment a false alarm
(accuracy at or above the target), a false ``ok`` (accuracy below it), or both, happen with probability
at most ``1 - level``. Before ``min_n`` audited texts there is no verdict. The fixed-n (single-look)
Clopper–Pearson bounds are kept beside them, labelled, for comparison with one-off evaluations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from confidently.decision.binomial import clopper_pearson_lower
from confidently.monitoring.sequence import METHOD, confidence_sequence

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
    lower, upper : the anytime-valid confidence sequence at ``level`` (None when ``n`` is 0): valid at every
        look simultaneously, so the verdict may be read after every audit.
    level : the probability that the true accuracy lies within ``lower``-``upper`` at every look.
    bounds : what ``lower`` and ``upper`` are, in words (method, level).
    single_look_lower, single_look_upper : one-sided fixed-n Clopper–Pearson bounds at ``level``, valid for one
        look decided in advance only; for comparison, never used for the verdict (None when ``n`` is 0).
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
    bounds: str
    single_look_lower: float | None
    single_look_upper: float | None
    target: float | None
    min_n: int
    status: str
    alarm: bool

    @classmethod
    def from_counts(cls, correct: int, n: int, *, target: float | None, level: float = 0.95,
                    min_n: int = MIN_AUDITED) -> LiveAccuracy:
        bounds = (f"anytime-valid {level:.0%} confidence sequence ({METHOD}): with probability >= {level:.0%} "
                  "the true accuracy lies between lower and upper at every look")
        if n == 0:
            accuracy = lower = upper = single_lower = single_upper = None
        else:
            accuracy = correct / n
            lower, upper = (float(bound) for bound in confidence_sequence(correct, n, level))
            single_lower = float(clopper_pearson_lower(correct, n, level))
            single_upper = 1.0 - float(clopper_pearson_lower(n - correct, n, level))
        if target is None:
            status = "no target"
        elif n < min_n:
            status = "too few audited texts"
        else:
            status = "ok" if lower >= target else ("below target" if upper < target else "unconfirmed")
        return cls(n, correct, accuracy, lower, upper, level, bounds, single_lower, single_upper, target, min_n,
                   status, status == "below target")

    def describe(self) -> str:
        if self.n == 0:
            return "no audited automated texts labelled yet"
        return (f"accuracy of automated decisions {self.accuracy:.3f} on {self.n} audited texts "
                f"(anytime-valid {self.level:.0%} bounds {self.lower:.3f}-{self.upper:.3f}, valid at every look; "
                f"single-look Clopper-Pearson {self.single_look_lower:.3f}-{self.single_look_upper:.3f}; "
                f"target {self.target if self.target is not None else 'none'}): {self._verdict()}")

    def _verdict(self) -> str:
        if self.status == "ok":
            return f"ok: the anytime lower bound {self.lower:.3f} reaches {self.target:g}"
        if self.status == "unconfirmed":
            return (f"unconfirmed: {self.target:g} lies between the anytime bounds, so the audits neither confirm "
                    "the target nor show that automation misses it")
        if self.status == "below target":
            return f"below target: the anytime upper bound {self.upper:.3f} is under {self.target:g}"
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
