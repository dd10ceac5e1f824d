"""The reference distribution drift is measured against, computed from the calibration rows.

For each classified text the server sees four things a calibrator's fit depends on: the raw
confidence (the top raw class probability), the other mass (next-token probability on no label),
the predicted label and the decision. :class:`Reference` records their distribution on the rows the
calibrator and policy were fitted on: decile bins and a quantile sample of each continuous feature
(for PSI and KS), and the shares of each label and decision. It is stored as JSON.

The labels and decisions come from :func:`~confidently.decision.decisions.decide`, with what the server
applies: the bundle's calibrator, policy, prediction sets and decision rule, and each row's truncation
flag (a text cut to fit is decided ``review``), so live decision rates are compared like with like.

Those decisions are in sample: the calibrator was fitted on these rows (the threshold was certified on
their out-of-fold scores, from copies that each left a fold out). The reference describes the calibrator
the server applies, so it keeps that one; ``decided_by`` says so, and the drift report repeats it beside the
rates. Measured with ``benchmarks/reference_in_sample.py`` on 2,000 cached movie snippets (500 calibration
rows, the other 1,500 as new texts, threshold 0.9, 10 random splits), the in-sample automate rate was above
the new texts' by +0.2 (probe), +1.1 (Platt) and +0.9 (isotonic) points on average, within about one
standard deviation of the split-to-split spread; the out-of-fold rate (other calibrators than the one
served) was further off for the probe (-2.8) and isotonic (+2.7). A gap of two points moves the decision
PSI by under 0.002 (the alarm is above 0.25).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_probs
from confidently.decision.decisions import Decisions, decide
from confidently.errors import ArtifactError, DataError
from confidently.files import check_format

if TYPE_CHECKING:
    from confidently.bundle.bundle import Bundle
    from confidently.calibration import Calibrator
    from confidently.decision.conformal import ConformalPredictor
    from confidently.decision.policy import DecisionPolicy

REFERENCE_FORMAT = "confidently.reference"
REFERENCE_FORMAT_VERSION = 1
#: Its file name in a calibration bundle.
REFERENCE_FILE = "reference.json"
#: Continuous features, in the order reports list them.
CONTINUOUS = ("raw_confidence", "other_mass")
#: PSI bins: the reference's deciles (ties merged), so each holds about a tenth of the reference.
N_BINS = 10
#: KS compares live values with this many evenly spaced quantiles of the reference.
N_QUANTILES = 1000
DECISIONS = ("automate", "review")


@dataclass(frozen=True)
class ContinuousReference:
    """One continuous feature on the reference rows.

    Attributes
    ----------
    edges : inner bin edges (ascending, at most ``N_BINS - 1``); bin ``i`` is ``(edges[i-1], edges[i]]``,
        with the first and last bins open-ended, so every live value falls in one.
    shares : share of the reference rows in each bin (``len(edges) + 1`` values summing to 1).
    quantiles : ``N_QUANTILES`` evenly spaced quantiles of the reference values (fewer when the
        reference has fewer rows), standing in for the reference sample in the KS test.
    """

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    quantiles: tuple[float, ...]

    @classmethod
    def from_values(cls, values: np.ndarray) -> ContinuousReference:
        inner = np.unique(np.quantile(values, np.linspace(0, 1, N_BINS + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(inner, values, side="left"), minlength=len(inner) + 1)
        quantiles = np.quantile(values, np.linspace(0, 1, min(N_QUANTILES, len(values))))
        return cls(tuple(inner.tolist()), tuple((counts / len(values)).tolist()), tuple(quantiles.tolist()))

    def bin_counts(self, values: ArrayLike) -> np.ndarray:
        """How many of ``values`` fall in each bin."""
        return np.bincount(np.searchsorted(np.asarray(self.edges), np.asarray(values, dtype=float), side="left"),
                           minlength=len(self.shares))


@dataclass(frozen=True)
class Reference:
    """What the calibration rows looked like (see the module docstring).

    Attributes
    ----------
    labels : the task's labels, in column order.
    n : number of reference rows.
    continuous : ``raw_confidence`` and ``other_mass`` (:class:`ContinuousReference`).
    label_shares : share of reference rows predicted as each label.
    decision_rates : share decided ``automate`` and ``review`` (empty without a policy).
    source : how the rows were obtained, in words (file, split), for the audit trail.
    decided_by : how the decisions behind ``decision_rates`` were made, in words (rule, in sample or raw,
        truncated rows); ``"not recorded"`` for references written before it was kept.
    """

    labels: tuple[str, ...]
    n: int
    continuous: Mapping[str, ContinuousReference]
    label_shares: Mapping[str, float]
    decision_rates: Mapping[str, float]
    source: str
    decided_by: str = "not recorded"

    @classmethod
    def from_scores(cls, probs: ArrayLike, other_mass: ArrayLike, *, labels: Sequence[str],
                    calibrator: Calibrator | None = None, policy: DecisionPolicy | None = None,
                    source: str, hidden: np.ndarray | None = None, truncated: ArrayLike | None = None,
                    prediction_sets: ConformalPredictor | None = None, rule: str = "threshold",
                    groups: Sequence | None = None) -> Reference:
        """The reference of rows with raw class probabilities ``probs`` (n, k) and ``other_mass`` (n,)
        (and their hidden states ``hidden`` when the calibrator is a hidden-state probe).

        The predicted label and the decision are the server's, from the one
        :func:`~confidently.decision.decisions.decide`: from the calibrated probabilities when there is a
        calibrator, else the raw ones; decided by ``rule`` (the policy's threshold, or single-label
        ``prediction_sets``, with each row's ``groups`` value for sets fitted per slice); a row flagged in
        ``truncated`` (cut to fit the context) is decided ``review``, as the server decides it.
        """
        raw = check_probs(probs, name="probs")
        other = np.asarray(other_mass, dtype=float)
        if other.shape != (raw.shape[0],) or not np.all(np.isfinite(other)):
            raise DataError(f"other_mass must be {raw.shape[0]} finite numbers, one per row; got shape {other.shape}")
        if len(labels) != raw.shape[1]:
            raise DataError(f"{len(labels)} labels for {raw.shape[1]} probability columns")
        decisions = decide(raw, labels=labels, calibrator=calibrator, policy=policy, hidden=hidden,
                           prediction_sets=prediction_sets, groups=groups, rule=rule, truncated=truncated)
        label_counts = np.bincount(decisions.label_index, minlength=len(labels))
        decided = decisions.decision
        rates = {} if decided is None else {d: float(np.mean(decided == d)) for d in DECISIONS}
        return cls(
            labels=tuple(labels), n=int(raw.shape[0]),
            continuous={"raw_confidence": ContinuousReference.from_values(raw.max(axis=1)),
                        "other_mass": ContinuousReference.from_values(other)},
            label_shares={name: float(c / len(raw)) for name, c in zip(labels, label_counts)},
            decision_rates=rates, source=source, decided_by=_decided_by(decisions),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REFERENCE_FORMAT, "format_version": REFERENCE_FORMAT_VERSION, "labels": list(self.labels),
            "n": self.n, "source": self.source, "bins": f"reference deciles ({N_BINS} bins, ties merged)",
            "continuous": {name: {"edges": list(ref.edges), "shares": list(ref.shares),
                                  "quantiles": list(ref.quantiles)} for name, ref in self.continuous.items()},
            "label_shares": dict(self.label_shares), "decision_rates": dict(self.decision_rates),
            "decided_by": self.decided_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        check_format(data, format=REFERENCE_FORMAT, version=REFERENCE_FORMAT_VERSION, what="reference distribution")
        try:
            continuous = {name: ContinuousReference(tuple(map(float, data["continuous"][name]["edges"])),
                                                    tuple(map(float, data["continuous"][name]["shares"])),
                                                    tuple(map(float, data["continuous"][name]["quantiles"])))
                          for name in CONTINUOUS}
            return cls(labels=tuple(data["labels"]), n=int(data["n"]), continuous=continuous,
                       label_shares={str(k): float(v) for k, v in data["label_shares"].items()},
                       decision_rates={str(k): float(v) for k, v in data["decision_rates"].items()},
                       source=str(data["source"]), decided_by=str(data.get("decided_by", "not recorded")))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ArtifactError(f"malformed reference distribution: {type(error).__name__}: {error}") from None

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> Reference | None:
        """The reference ``bundle`` carries (its hash-checked ``reference.json``), or None if it has none."""
        if REFERENCE_FILE not in bundle.extras:
            return None
        try:
            return cls.from_dict(bundle.extras[REFERENCE_FILE])
        except ArtifactError as error:
            raise ArtifactError(f"{bundle.folder / REFERENCE_FILE}: {error}") from None


def _decided_by(decisions: Decisions) -> str:
    """How ``decisions`` were made, in words, for :attr:`Reference.decided_by`."""
    if decisions.decided_by is None:
        return "no decision (no policy)"
    rule = ("the policy's threshold" if decisions.decided_by == "threshold"
            else "single-label prediction sets")
    scores = ("in sample: the calibrator applied to the rows it was fitted on (the threshold was certified on "
              "their out-of-fold scores), so the automate rate may be a little optimistic"
              if decisions.calibrated else "on the raw probabilities (no calibrator)")
    cut = 0 if decisions.truncated is None else int(decisions.truncated.sum())
    return (f"decide() as the server decides: {rule}, {scores}; {cut} of {len(decisions)} rows cut to fit the "
            "context, decided review")
