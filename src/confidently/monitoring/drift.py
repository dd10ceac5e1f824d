"""Drift of live traffic from the reference distribution: PSI on every feature, KS on the continuous ones.

:class:`DriftMonitor` keeps the last ``window`` classified texts of one adapter and compares them
with its :class:`~confidently.monitoring.reference.Reference`:

* **PSI** (population stability index) over the reference's bins (deciles for raw confidence and
  other mass; one bin per label or decision),
  ``PSI = sum_i (a_i - e_i) ln(a_i / e_i)`` with live shares ``a_i`` and reference shares ``e_i``, each
  smoothed by adding half a count to every bin so empty bins stay finite. Rule of thumb: < 0.1
  stable, 0.1-0.25 moderate, > 0.25 a real shift (the default alarm).
* **KS** (two-sample Kolmogorov–Smirnov, ``scipy.stats.ks_2samp``) between the live values and the
  reference's stored quantiles; the p-value treats those quantiles as a sample of their count
  (at most 1,000), which is conservative when the reference had more rows.

No alarm is raised before ``min_n`` live texts: PSI and KS of a handful of texts are noise.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import ks_2samp

from confidently.errors import ConfigError
from confidently.monitoring.reference import CONTINUOUS, DECISIONS, Reference

PSEUDOCOUNT = 0.5
#: Categorical features, after the continuous ones.
CATEGORICAL = ("label", "decision")


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature's drift raises an alarm.

    Attributes
    ----------
    psi : alarm when PSI exceeds this.
    ks_pvalue : alarm when a continuous feature's KS p-value falls below this.
    min_n : no alarm before this many live texts are in the window.
    window : how many of the latest texts are compared.
    """

    psi: float = 0.25
    ks_pvalue: float = 0.01
    min_n: int = 100
    window: int = 2000

    def __post_init__(self) -> None:
        if not (self.psi > 0 and 0 < self.ks_pvalue < 1 and 1 <= self.min_n <= self.window):
            raise ConfigError(f"drift thresholds need psi > 0, 0 < ks_pvalue < 1 and 1 <= min_n <= window; "
                              f"got {self}")


def smoothed_shares(counts: np.ndarray) -> np.ndarray:
    """``(counts + 0.5) / (n + 0.5 * bins)``: shares with no zero, for PSI's logarithm."""
    counts = np.asarray(counts, dtype=float)
    return (counts + PSEUDOCOUNT) / (counts.sum() + PSEUDOCOUNT * len(counts))


def psi(reference_counts: np.ndarray, live_counts: np.ndarray) -> float:
    """Population stability index between two histograms over the same bins (see the module docstring)."""
    expected, actual = smoothed_shares(reference_counts), smoothed_shares(live_counts)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class FeatureDrift:
    """How one feature of the live window compares with the reference.

    Attributes
    ----------
    feature : ``raw_confidence``, ``other_mass``, ``label`` or ``decision``.
    bins : bin names: ``"(a, b]"`` intervals, labels or decisions.
    reference_shares, live_shares : unsmoothed share of each bin.
    psi : population stability index (smoothed; see the module docstring).
    ks_statistic, ks_pvalue : two-sample KS against the reference quantiles (continuous features only).
    alarm : whether a threshold was crossed (always False below ``min_n`` live texts).
    """

    feature: str
    bins: list[str]
    reference_shares: list[float]
    live_shares: list[float]
    psi: float
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    alarm: bool = False


@dataclass(frozen=True)
class DriftReport:
    """The live window of one adapter against its reference.

    Attributes
    ----------
    n_live : texts in the window (the latest ``window`` classified).
    n_reference : rows the reference was computed from (0 without a reference).
    reference_source : how those rows were obtained.
    status : ``no reference``, ``too few texts`` (fewer than ``min_n``), ``ok`` or ``drift``.
    features : one entry per feature (empty without a reference or before the first text).
    thresholds : the alarm thresholds in force.
    alarms : one line per feature whose drift crossed its threshold.
    reference_decided_by : how the reference's label and decision shares were decided
        (:attr:`~confidently.monitoring.reference.Reference.decided_by`: in sample when calibrated); None
        without a reference.
    """

    n_live: int
    n_reference: int
    reference_source: str | None
    status: str
    features: list[FeatureDrift]
    thresholds: DriftThresholds
    alarms: list[str] = field(default_factory=list)
    reference_decided_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DriftMonitor:
    """The latest classified texts of one adapter, compared with its reference on demand.

    Parameters
    ----------
    labels : the labels the adapter serves.
    reference : the calibration rows' distribution, or None (then only live shares are reported).
        Ignored, with a note in the report, when its labels are not ``labels``.
    thresholds : alarm thresholds and window size.
    """

    def __init__(self, labels: Sequence[str], reference: Reference | None,
                 thresholds: DriftThresholds = DriftThresholds()):
        self.labels = tuple(labels)
        self.reference = reference if reference is not None and reference.labels == self.labels else None
        self.reference_note = None
        if reference is not None and self.reference is None:
            self.reference_note = (f"reference ignored: its labels {list(reference.labels)} are not the served "
                                   f"labels {list(self.labels)}")
        self.thresholds = thresholds
        self._rows: deque[tuple[float, float, int, int]] = deque(maxlen=thresholds.window)
        self._lock = threading.Lock()
        self._alarmed: frozenset[str] = frozenset()

    def observe(self, raw_confidence: Sequence[float], other_mass: Sequence[float], labels: Sequence[str],
                decisions: Sequence[str | None]) -> None:
        """Add classified texts to the window (decision None, no policy, counts as neither)."""
        index = {name: i for i, name in enumerate(self.labels)}
        codes = {d: i for i, d in enumerate(DECISIONS)}
        with self._lock:
            for conf, other, label, decision in zip(raw_confidence, other_mass, labels, decisions):
                self._rows.append((float(conf), float(other), index[label], codes.get(decision, -1)))

    def new_alarms(self) -> list[str]:
        """Alarms raised since the last call (each logged once until it clears and comes back)."""
        report = self.report()
        current = frozenset(report.alarms)
        with self._lock:
            fresh, self._alarmed = sorted(current - self._alarmed), current
        return fresh

    def report(self) -> DriftReport:
        with self._lock:
            rows = np.array(self._rows, dtype=float).reshape(-1, 4)
        n, ref, limits = len(rows), self.reference, self.thresholds
        if ref is None:
            return DriftReport(n, 0, self.reference_note, "no reference", [], limits)
        if n == 0:
            return DriftReport(0, ref.n, ref.source, "too few texts", [], limits,
                               reference_decided_by=ref.decided_by)
        judged = n >= limits.min_n
        features = [self._continuous(name, rows[:, i], judged) for i, name in enumerate(CONTINUOUS)]
        features.append(self._categorical("label", rows[:, 2], list(self.labels), ref.label_shares, judged))
        if ref.decision_rates:
            decided = rows[:, 3][rows[:, 3] >= 0]
            if len(decided):
                features.append(self._categorical("decision", decided, list(DECISIONS), ref.decision_rates,
                                                  judged and len(decided) >= limits.min_n))
        alarms = [_alarm_text(f, limits) for f in features if f.alarm]
        status = "too few texts" if not judged else ("drift" if alarms else "ok")
        return DriftReport(n, ref.n, ref.source, status, features, limits, alarms, ref.decided_by)

    def _continuous(self, name: str, values: np.ndarray, judged: bool) -> FeatureDrift:
        reference = self.reference.continuous[name]
        live = reference.bin_counts(values)
        expected = np.asarray(reference.shares) * self.reference.n
        value = psi(expected, live)
        ks = ks_2samp(values, np.asarray(reference.quantiles))
        alarm = judged and (value > self.thresholds.psi or ks.pvalue < self.thresholds.ks_pvalue)
        return FeatureDrift(name, _interval_names(reference.edges), list(reference.shares),
                            (live / len(values)).tolist(), value, float(ks.statistic), float(ks.pvalue), bool(alarm))

    def _categorical(self, name: str, codes: np.ndarray, bins: list[str], shares: Mapping[str, float],
                     judged: bool) -> FeatureDrift:
        live = np.bincount(codes.astype(int), minlength=len(bins))
        reference_shares = [shares.get(b, 0.0) for b in bins]
        value = psi(np.asarray(reference_shares) * self.reference.n, live)
        return FeatureDrift(name, bins, reference_shares, (live / len(codes)).tolist(), value,
                            alarm=bool(judged and value > self.thresholds.psi))


def _interval_names(edges: Sequence[float]) -> list[str]:
    bounds = ["-inf", *(f"{e:.4g}" for e in edges), "inf"]
    return [f"({lo}, {hi}]" for lo, hi in zip(bounds, bounds[1:])]


def _alarm_text(feature: FeatureDrift, limits: DriftThresholds) -> str:
    text = f"{feature.feature}: PSI {feature.psi:.3f} (alarm above {limits.psi:g})"
    if feature.ks_pvalue is not None:
        text += f", KS {feature.ks_statistic:.3f} p={feature.ks_pvalue:.2g} (alarm below {limits.ks_pvalue:g})"
    return text
