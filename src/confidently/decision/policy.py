"""The persisted decision policy: automate a prediction when its calibrated confidence reaches a
threshold, review the rest, with the threshold's guarantee in words (``policy.json``)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_confidence
from confidently.decision.procedures import PROCEDURE_NAMES, check_procedure
from confidently.decision.thresholds import guarantee_text
from confidently.errors import ArtifactError, DataError
from confidently.files import atomic_write_json, check_format, read_artifact

if TYPE_CHECKING:
    from confidently.decision.thresholds import CertifiedThreshold, ThresholdAnalysis

POLICY_FORMAT = "confidently.policy"
POLICY_FORMAT_VERSION = 1


@dataclass(frozen=True)
class DecisionPolicy:
    """Automate a prediction when its calibrated confidence is >= ``threshold``; review the rest.

    Attributes
    ----------
    threshold : float or None
        ``None`` reviews everything (no threshold could be certified).
    target_accuracy : float or None
        The accuracy the threshold was certified for, if any.
    certified : bool
        Whether ``threshold`` comes from a Learn-Then-Test certificate.
    method : str
        How the threshold was chosen, in words (stored with the policy for the audit trail).
    level : float or None
        Confidence ``1 - delta`` of the certificate (None for an uncertified threshold, and in policies
        written before it was recorded, which still load).
    procedure : str or None
        The Learn-Then-Test procedure that tested the thresholds
        (:data:`~confidently.decision.procedures.PROCEDURES`); None for an uncertified threshold, and in
        policies written before it was recorded (those used ``"fixed-sequence"``).
    """

    threshold: float | None
    target_accuracy: float | None
    certified: bool
    method: str
    level: float | None = None
    procedure: str | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not (
            isinstance(self.threshold, numbers.Real) and not isinstance(self.threshold, bool)
            and 0.0 <= self.threshold <= 1.0
        ):
            raise DataError(f"threshold must be a number in [0, 1] or None; got {self.threshold!r}")
        if self.target_accuracy is not None and not (
            isinstance(self.target_accuracy, numbers.Real) and not isinstance(self.target_accuracy, bool)
            and 0.0 < self.target_accuracy <= 1.0
        ):
            raise DataError(f"target_accuracy must be in (0, 1] or None; got {self.target_accuracy!r}")
        if self.level is not None and not (isinstance(self.level, numbers.Real) and 0.0 < self.level < 1.0):
            raise DataError(f"level must be in (0, 1) or None; got {self.level!r}")
        if self.procedure is not None:
            check_procedure(self.procedure)
        if not isinstance(self.certified, bool) or not isinstance(self.method, str):
            raise DataError("certified must be a bool and method a string")

    @property
    def guarantee(self) -> str:
        """What the policy promises, in words (written into the policy file beside the fields)."""
        if self.certified and self.threshold is not None and self.target_accuracy is not None:
            if self.level is None:
                return (f"automated predictions certified {self.target_accuracy:.0%} accurate by an older rule "
                        "that did not record its confidence level")
            return guarantee_text(self.target_accuracy, self.level, certified=True)
        if self.threshold is None:
            if self.target_accuracy is not None and self.level is not None:
                return guarantee_text(self.target_accuracy, self.level, certified=False)
            return "no threshold: every prediction goes to review"
        return f"not certified: automates at confidence >= {self.threshold:.2f} with no accuracy guarantee"

    @classmethod
    def from_certificate(cls, certificate: CertifiedThreshold) -> DecisionPolicy:
        """A policy applying a certified threshold (reviewing everything when none qualified)."""
        return cls(
            threshold=certificate.threshold,
            target_accuracy=certificate.target_accuracy,
            certified=certificate.certified,
            method=(f"Learn-Then-Test {PROCEDURE_NAMES[certificate.procedure]} from the strictest threshold down, "
                    f"exact binomial p-values (one-sided {certificate.level:.0%} Clopper-Pearson), thresholds "
                    f"automating fewer than {certificate.min_automated} not tested: {certificate.reason}"),
            level=certificate.level,
            procedure=certificate.procedure,
        )

    @classmethod
    def from_cost(cls, analysis: ThresholdAnalysis) -> DecisionPolicy:
        """A policy applying the cost-optimal threshold of ``analysis`` (not certified)."""
        row = analysis.optimal
        return cls(
            threshold=row.threshold,
            target_accuracy=None,
            certified=False,
            method=f"minimum of {analysis.review_cost:g} x reviews + {analysis.error_cost:g} x automated "
            f"errors over {len(analysis.rows)} thresholds: {row.cost_per_item:.4g} per item at {row.threshold:.2f}",
        )

    def decide(self, confidence: ArrayLike) -> np.ndarray:
        """``"automate"`` where confidence >= threshold, else ``"review"``; an array of str."""
        conf = check_confidence(confidence)
        if self.threshold is None:
            return np.full(conf.shape, "review")
        return np.where(conf >= self.threshold, "automate", "review")

    def to_dict(self) -> dict[str, Any]:
        return {"format": POLICY_FORMAT, "format_version": POLICY_FORMAT_VERSION, **asdict(self),
                "guarantee": self.guarantee}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionPolicy:
        """Rebuild a policy from :meth:`to_dict`; malformed input raises :class:`ArtifactError`."""
        check_format(data, format=POLICY_FORMAT, version=POLICY_FORMAT_VERSION, what="decision policy")
        try:
            return cls(**{key: data[key] for key in ("threshold", "target_accuracy", "certified", "method")},
                       level=data.get("level"), procedure=data.get("procedure"))
        except (KeyError, DataError) as error:
            raise ArtifactError(f"malformed decision policy: {error}") from None

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DecisionPolicy:
        return read_artifact(path, cls.from_dict)
