"""Request and response bodies of the review queue, feedback and drift endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from confidently.monitoring.canary import CanaryCheck
from confidently.monitoring import DriftReport, LiveAccuracy
from confidently.server.schemas import ReviewReason

REQUEST_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
#: Largest text index a request can have (well above any server's --max-texts).
MAX_POSITION = 100_000


class ReviewItem(BaseModel):
    """A queued text, claimed by the reviewer who asked for it until ``claim_until``."""

    request_id: str
    position: int = Field(description="The text's index in its classify request.")
    adapter: str | None
    bundle_version: str | None
    reason: Literal["review", "audit"] = Field(description="review: the policy sent it; audit: automated, "
                                               "sampled to measure live accuracy.")
    text: str
    label: str = Field(description="The model's label.")
    confidence: float = Field(description="The label's probability the decision was made on: from "
                              "`calibrated_probs` when `calibrated`, else from `raw_probs`.")
    calibrated: bool | None = Field(description="Whether `confidence` is calibrated; null for items logged "
                                    "before the queue recorded it.")
    decision: str | None
    review_reason: ReviewReason | None = Field(
        default=None, description="Why the decision is review (truncated: the model saw only part of the text); "
                                  "null for audit samples and older items.")
    labels: list[str]
    raw_probs: dict[str, float] = Field(description="Raw class probabilities: each label's share of the model's "
                                        "label mass, uncalibrated.")
    calibrated_probs: dict[str, float] | None = Field(
        description="Calibrated class probabilities; null when uncalibrated or logged before they were stored.")
    claim_until: float | None = Field(description="Unix time the claim runs out.")


class ReviewNext(BaseModel):
    """The reviewer's next item (null when the queue is empty) and how many wait."""

    item: ReviewItem | None
    pending: int


class LabelRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    label: str = Field(min_length=1, max_length=200)


class FeedbackRequest(BaseModel):
    """The true label of one classified text."""

    model_config = ConfigDict(strict=True, extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID_PATTERN, description="The request_id of a classify response.")
    position: int = Field(ge=0, le=MAX_POSITION)
    label: str = Field(min_length=1, max_length=200)


class FeedbackOut(BaseModel):
    request_id: str
    position: int
    label: str
    reviewer: str
    source: Literal["page", "api"]
    created_at: float


class DriftResponse(BaseModel):
    """Drift of an adapter's latest texts from its reference, and the live accuracy of its automated decisions."""

    adapter: str | None
    bundle_version: str | None
    drift: DriftReport
    live_accuracy: LiveAccuracy | None = Field(description="Null when the server keeps no review queue.")
    canary: CanaryCheck | None = Field(description="The golden prompts re-scored when the adapter was loaded; "
                                       "null when it ships none or checks are off.")
