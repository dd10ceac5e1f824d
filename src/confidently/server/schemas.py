"""Request and response bodies of the HTTP API (pydantic; they also make the OpenAPI schema).

Requests are strict (a number is not a string, ``"3"`` is not an integer) and refuse unknown
fields, so a typo fails with a message naming the field instead of being silently ignored.
This module imports pydantic only (and the core's result type, for type checking), so
:class:`confidently.Client` can parse replies with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr

if TYPE_CHECKING:
    from confidently.types import Prediction

#: Adapter names: one path component, no leading dot, so a name can never leave the adapters folder.
ADAPTER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_TOP_TOKENS = 50


def _check_text(text: str) -> str:
    # pydantic already refuses lone surrogates ("\ud800"), which JSON can carry but no tokenizer takes.
    if not text.strip():
        raise ValueError("text is empty or only whitespace")
    return text


Text = Annotated[str, Field(min_length=1), AfterValidator(_check_text)]
AdapterName = Annotated[str, Field(pattern=ADAPTER_NAME_PATTERN, examples=["support-tickets"])]
Decision = Literal["automate", "review"]
#: Why a text was decided review (:data:`confidently.decision.decisions.REVIEW_REASONS`).
ReviewReason = Literal["truncated", "below_threshold", "no_threshold", "set_not_single"]


class ClassifyRequest(BaseModel):
    """Texts to classify with the base model (``adapter`` null) or with one loaded adapter."""

    model_config = ConfigDict(strict=True, extra="forbid")

    texts: list[Text] = Field(min_length=1, description="Texts to classify (the server caps how many and "
                              "how long; see GET /healthz for the limits).", examples=[["I love it"]])
    adapter: AdapterName | None = Field(default=None, description="A loaded adapter; null for the base model.")
    top_tokens: int = Field(default=0, ge=0, le=MAX_TOP_TOKENS,
                            description="Also return this many most likely next tokens per text "
                                        "(costs one extra forward pass per text).")


class TokenOut(BaseModel):
    """One entry of the next-token distribution."""

    rank: int
    token: str
    token_id: int | None
    logprob: float
    prob: float


class TextResult(BaseModel):
    """The classification of one text (:class:`confidently.types.Prediction`, as JSON).

    ``label`` and ``confidence`` are the answer: calibrated when ``calibrated`` is true, else the raw
    share of the label mass. ``raw_*`` fields are always the model's own scores.
    """

    label: str
    confidence: float = Field(description="The label's probability: calibrated when `calibrated`, else raw.")
    calibrated: bool = Field(description="Whether a calibrator produced label and confidence.")
    decision: Decision | None = Field(description="From the response's `decision_rule`: the policy's threshold "
                                      "on `confidence`, or a single-label prediction set; null without one.")
    prediction_set: list[str] | None = Field(default=None, description="The labels the conformal prediction set "
                                             "keeps; null when the bundle has no prediction sets.")
    raw_label: str = Field(description="The label with the most class mass.")
    raw_confidence: float = Field(description="raw_label's share of the label mass (uncalibrated).")
    raw_probs: dict[str, float] = Field(description="Raw class probabilities (shares of the label mass).")
    calibrated_probs: dict[str, float] | None = Field(description="Calibrated class probabilities; null without "
                                                      "a calibrator.")
    other_mass: float = Field(description="Next-token probability on tokens that mean no label.")
    truncated: bool = Field(description="The text was cut to fit (--max-text-tokens / --max-text-chars): its "
                                        "scores are about the part the model saw, so it is decided `review`.")
    review_reason: ReviewReason | None = Field(
        default=None, description="Why `decision` is review: truncated, below_threshold, no_threshold or "
                                  "set_not_single; null when automated or undecided.")
    top_tokens: list[TokenOut] = Field(default_factory=list)
    # What a probe or combiner read (Prediction.features), for the feedback store; never sent.
    _features: Any = PrivateAttr(default=None)

    @classmethod
    def from_prediction(cls, prediction: Prediction) -> TextResult:
        """The one way a result is built: from the core's :class:`~confidently.types.Prediction`."""
        result = cls(label=prediction.label, confidence=prediction.confidence, calibrated=prediction.calibrated,
                     decision=prediction.decision, prediction_set=prediction.prediction_set,
                     raw_label=prediction.raw_label,
                     raw_confidence=prediction.raw_confidence, raw_probs=prediction.raw_probs,
                     calibrated_probs=prediction.calibrated_probs, other_mass=prediction.other_mass,
                     truncated=prediction.truncated, review_reason=prediction.review_reason,
                     top_tokens=[TokenOut(**t.to_dict()) for t in prediction.top_tokens])
        result._features = prediction.features
        return result

    @property
    def features(self) -> Any:
        """What the calibrator read for this text beyond class probabilities (:attr:`Prediction.features`:
        hidden state or every prompt's class masses), kept for the feedback store and never sent; or None."""
        return self._features


class ClassifyResponse(BaseModel):
    """One result per input text, in input order."""

    model: str
    adapter: str | None
    labels: list[str]
    threshold: float | None = Field(description="The policy's threshold when it decides; null when the prediction-"
                                    "set rule decides, without a policy, or when the policy reviews all.")
    decided_on: Literal["calibrated", "raw"] | None = Field(
        description="Which confidence the threshold applies to: calibrated when a calibrator is loaded, "
                    "raw when only a policy is; null without a policy.")
    guarantee: str | None = Field(default=None, description="What an `automate` decision promises, in words; "
                                  "null without a policy.")
    decision_rule: Literal["threshold", "prediction_set"] | None = Field(
        default=None, description="What decides: the policy's threshold, or automate-when-the-prediction-set-"
                                  "holds-one-label (the bundle's choice); null without either.")
    set_guarantee: str | None = Field(default=None, description="What the prediction sets promise, in words; "
                                      "null without them.")
    results: list[TextResult]
    request_id: str | None = Field(default=None, description="Names this request's texts for feedback "
                                   "(POST /v1/feedback with it and a text's position).")
    bundle_version: str | None = Field(default=None, description="Version of the calibrator and policy that "
                                       "decided (null for an uncalibrated base model).")


class ModelInfo(BaseModel):
    """What the base model or one adapter serves with."""

    name: str | None = Field(description="The adapter name; null for the base model.")
    path: str | None = Field(description="Folder, relative to the adapters folder.")
    base_model: str
    base_weights_id: str
    task: str
    labels: list[str]
    calibrator: str | None = Field(description="Calibration method, or null.")
    threshold: float | None
    target_accuracy: float | None
    guarantee: str | None = None
    decided_on: Literal["calibrated", "raw"] | None
    manifest_sha256: str | None
    bundle_version: str | None = Field(default=None, description="The bundle version that decides: its "
                                       "manifest's hash (12 hex digits) and version number.")
    weights_sha256: str | None
    engine_model: str | None = Field(default=None, description="The model name the serving engine is asked "
                                     "for (--backend openai); null when the model runs in this server.")
    weights_checked_by: Literal["sha256", "engine", "canary"] | None = Field(
        default=None, description="How the weights are matched to the bundle's: their sha256 (here), the bundle "
        "was fitted through this engine model, or its canary re-scored through the engine; null without a bundle.")


class AdaptersResponse(BaseModel):
    base: ModelInfo
    adapters: list[ModelInfo]


class LoadAdapterRequest(BaseModel):
    """Where to load an adapter from: ``path`` inside the adapters folder (default: the name)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    path: str | None = Field(default=None, min_length=1, max_length=512, examples=["support-tickets/v2"])


class Limits(BaseModel):
    max_texts: int
    max_text_chars: int = Field(description="Most characters of one text that are scored: a longer text is cut "
                                            "(and flagged `truncated`, so decided `review`), never refused; a "
                                            "request's cost counts at most this many per text.")
    max_body_bytes: int
    max_request_cost: int = Field(description="Most characters × forward passes per classify request (two "
                                              "passes per text with top_tokens, else one).")
    max_concurrency: int = Field(description="Most /v1/ requests in flight; more get 503 with Retry-After.")
    read_timeout_s: float = Field(description="Seconds a client has to send a whole request; then 408.")
    batch_size: int


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    weights_id: str
    adapters: int
    queued_texts: int
    in_flight: int = Field(description="HTTP requests being handled, this one excluded.")
    limits: Limits


class ErrorResponse(BaseModel):
    """Every 4xx/5xx reply: one readable sentence, plus per-field errors for invalid requests."""

    detail: str
    errors: list[dict] | None = None
