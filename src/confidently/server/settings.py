"""Everything a server instance is configured with, validated once when the app is created."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from confidently.defaults import CHARS_PER_TOKEN_CAP, DEFAULT_MAX_TEXT_TOKENS
from confidently.models.registry import DEFAULT_MODEL


class Settings(BaseModel):
    """Server configuration (the ``confidently serve`` options).

    Attributes
    ----------
    model : registry name, local folder, ``.gguf`` file or hub id of the base model; with the openai
        backend, the base model's name on the engine (a registry name or folder also gives the
        tokenizer that renders prompts exactly as the local backend does).
    backend : ``transformers`` (the model runs here) or ``openai`` (an OpenAI-compatible engine at
        ``base_url``, e.g. vLLM or llama.cpp's server, scores; everything after the scores runs here).
    base_url : the engine's API root, e.g. ``http://127.0.0.1:8080/v1`` (openai backend only).
    api_key_env : NAME of the environment variable holding the engine's API key.
    tokenizer : registry name, folder or hub id of the engine model's tokenizer (renders the prompt as the
        local backend does; default: ``model`` when it is a registry name or folder).
    engine_models : adapter name -> the model name the engine serves that LoRA adapter under (vLLM:
        ``--lora-modules NAME=PATH``); an adapter not listed is asked for under its own name.
    engine_timeout_s : seconds the engine has to answer one request (one retry after a timeout or 5xx;
        then the classify request fails with 504, or 502 for the engine's other errors).
    task : the base model's task (built-in name or task ``.json``); None: the calibration bundle's task,
        or sentiment without one. Adapters bring their own.
    adapters_dir : folder holding one sub-folder per adapter; every adapter in it is loaded at
        start-up, and run-time loads may only read below it. None serves the base model alone.
    calibration : a calibration bundle for the base model (a ``confidently evaluate`` run folder), or None.
    admin_token : bearer token for the admin endpoints; None disables them (403).
    max_texts : most texts per request.
    max_text_tokens, max_text_chars : a longer text is cut and flagged ``truncated`` (and so decided
        ``review``), as ``score`` and ``classify`` do; None: their defaults (2048 tokens, or the model's
        context when less; 16 characters per token). Never a reason to refuse a text.
    max_body_bytes : largest accepted request body (413): with ``max_texts`` and ``max_request_cost``, the
        hard limit on what one request may send.
    max_request_cost : most characters × forward passes one classify request may cost (see
        :mod:`confidently.server.work`).
    batch_size : most texts scored in one forward pass (the micro-batcher groups up to this many).
    batch_wait_ms : how long the first request of a batch waits for others to join it.
    device, dtype : passed to the transformers backend.
    feedback_db : SQLite file or ``postgresql://`` URL of the review queue and labels; None keeps no queue.
    audit_fraction : share of ``automate`` decisions also sent to review, to measure live accuracy.
    reviewer_tokens : reviewer name -> bearer token for the review page and ``POST /v1/feedback``
        (the admin token is accepted too, as reviewer ``admin``).
    review_lease_s : how long a reviewer holds the item they were shown before others may get it.
    canary : what to do when an adapter's golden prompts score differently from when its calibrator was
        fitted: ``refuse`` it, ``mark`` it unhealthy (served, logged, reported), or ``off`` (not checked).
    version_poll_s : how often bundle folders are checked for a recalibrated version (``versions/vN``).
    read_timeout_s : how long a client may take to send a whole request (headers and body), counted
        from its first byte or from the connection's opening; then 408 and the connection is closed.
    max_concurrency : most ``/v1/`` requests in flight at once; more get 503 with ``Retry-After``.
    max_connections : most open connections; more are answered 503 and closed.
    drain_timeout_s : on shutdown, how long requests in flight have to finish; those still running
        then get 503 with ``Retry-After``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = DEFAULT_MODEL
    backend: Literal["transformers", "openai"] = "transformers"
    base_url: str | None = None
    api_key_env: str | None = None
    tokenizer: str | None = None
    engine_models: dict[str, str] = Field(default_factory=dict)
    engine_timeout_s: float = Field(default=30.0, gt=0)
    task: str | None = None
    adapters_dir: Path | None = None
    calibration: Path | None = None
    admin_token: str | None = Field(default=None, repr=False)
    max_texts: int = Field(default=64, ge=1)
    max_text_tokens: int | None = Field(default=None, ge=8)
    max_text_chars: int | None = Field(default=None, ge=8)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    max_request_cost: int = Field(default=65536, ge=1)
    batch_size: int = Field(default=16, ge=1)
    batch_wait_ms: float = Field(default=5.0, ge=0)
    device: str | None = None
    dtype: str | None = None
    feedback_db: str | None = None
    audit_fraction: float = Field(default=0.05, ge=0, le=1)
    reviewer_tokens: dict[str, str] = Field(default_factory=dict, repr=False)
    review_lease_s: float = Field(default=600.0, gt=0)
    canary: Literal["refuse", "mark", "off"] = "refuse"
    version_poll_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(default=128, ge=1)
    max_connections: int = Field(default=256, ge=1)
    drain_timeout_s: float = Field(default=30.0, gt=0)

    @property
    def text_char_cap(self) -> int:
        """Most characters of one text that are scored (a longer text is cut first): what a request's cost
        counts per text (the model's context may cut a text further, never less)."""
        return self.max_text_chars or CHARS_PER_TOKEN_CAP * (self.max_text_tokens or DEFAULT_MAX_TEXT_TOKENS)

    @property
    def scoring(self) -> dict[str, int | None]:
        """How every served classifier scores: batch size and the text caps, as :class:`Classifier` takes them."""
        return {"batch_size": self.batch_size, "max_text_tokens": self.max_text_tokens,
                "max_text_chars": self.max_text_chars}
