"""A share of rows (``k`` of ``n``) with its exact (Clopper–Pearson) 95% interval, and the one way it is written.

Every share stated from a count of rows (accuracy on labelled rows, the share of prediction sets that hold
the label, the accuracy of the automated rows) goes through :class:`ExactShare`, so the summary, the
report and the command line word it the same way and name the same method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from confidently.decision.binomial import clopper_pearson_interval

LEVEL = 0.95
METHOD = "exact (Clopper-Pearson) 95%"


@dataclass(frozen=True)
class ExactShare:
    """``k`` of ``n`` rows, with the exact two-sided 95% interval of the share they estimate."""

    k: int
    n: int

    @classmethod
    def of(cls, share: float, n: int) -> ExactShare:
        """From a share of ``n`` rows, for records that kept the share rather than the count (``k`` is
        ``round(share * n)``, exact for any share that was ``k / n``)."""
        return cls(0 if n == 0 else round(share * n), n)

    @property
    def share(self) -> float:
        return self.k / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """``(low, high)``; ``(nan, nan)`` when there are no rows."""
        return clopper_pearson_interval(self.k, self.n, LEVEL)

    def text(self) -> str:
        """``'75.0% (6/8, exact 95% CI 34.9%–96.8%)'``; ``'– (0/0)'`` when there are no rows."""
        if not self.n:
            return "– (0/0)"
        low, high = self.interval
        return f"{self.share:.1%} ({self.k}/{self.n}, exact 95% CI {low:.1%}–{high:.1%})"

    def to_dict(self) -> dict[str, Any]:
        """``{"k", "n", "share", "low", "high", "interval"}``: the JSON form, ``interval`` naming the method."""
        low, high = self.interval
        return {"k": self.k, "n": self.n, "share": self.share, "low": low, "high": high, "interval": METHOD}
