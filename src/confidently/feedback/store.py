"""The feedback store: a log of decisions, the review queue, and the labels reviewers gave.

One interface, :class:`FeedbackStore`, with an embedded SQLite implementation (the default) and a
PostgreSQL one for several server replicas. :func:`open_store` picks one from a path or URL.

Every classified text is logged (raw class probabilities, label, confidence, decision, bundle
version, and the features a hidden-state probe or a prompt ensemble's combiner read); texts decided
``review``, and an audit sample of ``automate`` ones, also enter the queue with their text.
Reviewers *claim* the next queued item for a lease, so concurrent reviewers never get the same one;
a label ends the item. Labels of audited items measure the live accuracy of automated decisions;
all labels feed recalibration.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from confidently.errors import ConfidentlyError, DataError

if TYPE_CHECKING:
    from confidently.feedback.features import FeatureVector

#: Why an item entered the queue: decided ``review``, or an ``automate`` decision sampled for audit.
Reason = Literal["review", "audit"]
REASONS = ("review", "audit")
#: Where a label came from: the review page or ``POST /v1/feedback``.
Source = Literal["page", "api"]
SOURCES = ("page", "api")
#: The adapter key of the base model in the store (adapter names cannot be empty).
BASE = ""


class StoreError(ConfidentlyError, RuntimeError):
    """The store cannot be opened or used (unreachable server, schema newer than this version)."""


class UnknownItemError(ConfidentlyError, KeyError):
    """No decision was logged under that request id and position."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class LabelConflictError(ConfidentlyError, ValueError):
    """The item already has a different label (the first label stands)."""


@dataclass(frozen=True)
class LoggedText:
    """One classified text as the server logs it.

    Attributes
    ----------
    position : index of the text in its request.
    label : the label the server returned (calibrated when a calibrator decided it).
    confidence : the confidence the decision was made on.
    decision : ``automate``, ``review`` or None (no policy).
    probs : raw class probabilities, label -> share of the label mass (what a calibrator is refitted on).
    queue : None, or why the text enters the review queue.
    text : the text; kept only for queued items.
    features : what the bundle's calibrator read, when it reads more than class probabilities (its
        hidden state, every prompt's class masses), for recalibration; None otherwise.
    calibrated_probs : calibrated class probabilities (what ``confidence`` is one of); None when uncalibrated.
    review_reason : why the decision is ``review`` (``truncated``, ``below_threshold``...); None otherwise.
    """

    position: int
    label: str
    confidence: float
    decision: str | None
    probs: dict[str, float]
    queue: Reason | None = None
    text: str | None = None
    features: FeatureVector | None = None
    calibrated_probs: dict[str, float] | None = None
    review_reason: str | None = None

    def __post_init__(self) -> None:
        if self.queue is not None and (self.queue not in REASONS or self.text is None):
            raise DataError(f"a queued text needs a reason in {REASONS} and its text; got queue={self.queue!r}")


@dataclass(frozen=True)
class QueueItem:
    """A queued text as a reviewer sees it.

    ``probs`` are the raw class probabilities; ``calibrated`` whether ``confidence`` is calibrated, with
    ``calibrated_probs`` the calibrated ones; ``review_reason`` why it was decided ``review`` (None for audit
    samples). Rows logged before the store kept these (schema versions 1 and 2) have None in all three.
    """

    request_id: str
    position: int
    adapter: str | None
    bundle_version: str | None
    reason: Reason
    text: str
    label: str
    confidence: float
    decision: str | None
    probs: dict[str, float]
    claimed_by: str | None
    claim_until: float | None
    created_at: float
    calibrated: bool | None = None
    calibrated_probs: dict[str, float] | None = None
    review_reason: str | None = None

    @property
    def labels(self) -> list[str]:
        return list(self.probs)


@dataclass(frozen=True)
class Feedback:
    """The label a reviewer (or a program) gave one logged text."""

    request_id: str
    position: int
    label: str
    reviewer: str
    source: Source
    created_at: float


@dataclass(frozen=True)
class LabelledText:
    """A logged decision with its reviewed label: a row for live accuracy and recalibration (``features``:
    what a feature-reading calibrator read, as :attr:`LoggedText.features`; None when none were logged;
    ``text``: the text, kept for queued items only, None for others)."""

    request_id: str
    position: int
    adapter: str | None
    bundle_version: str | None
    probs: dict[str, float]
    model_label: str
    true_label: str
    decision: str | None
    reason: Reason | None
    created_at: float
    features: FeatureVector | None = None
    text: str | None = None

    @property
    def correct(self) -> bool:
        return self.model_label == self.true_label


class FeedbackStore(ABC):
    """Decisions log, review queue and labels; every method is one transaction, safe from any thread."""

    #: What :meth:`describe` says the store is (``sqlite:PATH`` or a password-free URL).
    location: str

    @abstractmethod
    def record(self, request_id: str, adapter: str | None, bundle_version: str | None,
               texts: Sequence[LoggedText]) -> None:
        """Log one request's texts and queue those marked for it; durable when this returns."""

    @abstractmethod
    def claim(self, reviewer: str, *, adapter: str | None = None, any_adapter: bool = True,
              lease_s: float = 600.0) -> QueueItem | None:
        """The next unlabelled queued item, claimed by ``reviewer`` for ``lease_s`` seconds.

        A reviewer's unexpired claim is returned again (a reloaded page shows the same item); other
        reviewers skip it until the lease runs out. None when nothing is waiting. With
        ``any_adapter`` False only items of ``adapter`` (None: the base model) are considered.
        """

    @abstractmethod
    def release(self, reviewer: str, request_id: str, position: int) -> None:
        """Give up ``reviewer``'s claim on an item (a skip): it goes behind the items nobody skipped."""

    @abstractmethod
    def label(self, request_id: str, position: int, label: str, *, reviewer: str,
              source: Source = "api") -> Feedback:
        """Store a label for a logged text and take it off the queue; durable when this returns.

        The same label again returns the stored feedback (a retried request is harmless).

        Raises
        ------
        UnknownItemError
            No text was logged under ``request_id`` and ``position``.
        DataError
            ``label`` is not one of that text's labels.
        LabelConflictError
            The text already has another label.
        """

    @abstractmethod
    def item(self, request_id: str, position: int) -> QueueItem | None:
        """A queued item by id, claimed or not, labelled or not (None if it was never queued)."""

    @abstractmethod
    def pending(self, adapter: str | None = None, *, any_adapter: bool = True) -> int:
        """How many queued items have no label yet."""

    @abstractmethod
    def labelled(self, adapter: str | None = None, *, any_adapter: bool = False,
                 reason: Reason | None = None) -> list[LabelledText]:
        """Every labelled text of ``adapter`` (optionally only those queued for ``reason``), oldest first."""

    @abstractmethod
    def audit_counts(self, adapter: str | None, *, bundle_version: str | None = None) -> tuple[int, int]:
        """``(correct, n)`` over the labelled audit-sample texts of ``adapter`` (and ``bundle_version``)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection this object opened."""

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def now() -> float:
    return time.time()


def dumps(probs: dict[str, float]) -> str:
    return json.dumps(probs, separators=(",", ":"))
