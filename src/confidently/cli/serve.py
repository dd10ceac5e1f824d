"""``confidently serve``: the HTTP API over a loaded model, its bundle and adapters."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from confidently.cli.app import app
from confidently.cli.options import (DEFAULTS, ApiKeyOpt, BaseUrlOpt, DeviceOpt, DtypeOpt, MaxTextCharsOpt,
                                     MaxTextTokensOpt, ModelOpt, TaskOpt, check_bundle_backend, given,
                                     read_calibration)
from confidently.errors import ArtifactError
from confidently.files import read_json


class LogLevel(str, Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


class ServeBackend(str, Enum):
    """Where the scores come from: the model loaded here, or an OpenAI-compatible serving engine."""

    transformers = "transformers"
    openai = "openai"


class CanaryAction(str, Enum):
    """What ``serve`` does with a bundle whose golden prompts no longer score as recorded."""

    refuse = "refuse"
    mark = "mark"
    off = "off"


@app.command()
def serve(
    ctx: typer.Context,
    model: ModelOpt = DEFAULTS["model"],
    backend: Annotated[ServeBackend, typer.Option(
        help="transformers: the model runs here; openai: an OpenAI-compatible engine at --base-url (vLLM, "
             "llama.cpp's server) scores, and --model is its base model's name there.")] = ServeBackend.transformers,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: Annotated[Optional[str], typer.Option(
        "--tokenizer", help="--backend openai: registry name, folder or hub id of the engine model's tokenizer, "
                            "which renders prompts exactly as locally. [default: --model, when it is a registry "
                            "name or folder]", show_default=False)] = None,
    engine_model: Annotated[Optional[list[str]], typer.Option(
        "--engine-model", metavar="ADAPTER=NAME",
        help="--backend openai: the model name the engine serves an adapter under (vLLM: --lora-modules "
             "NAME=PATH); repeat per adapter. Default: the adapter's own name.")] = None,
    engine_timeout: Annotated[float, typer.Option(
        min=0.001, help="--backend openai: seconds the engine has to answer one request (one retry); then 504.")
    ] = 30.0,
    adapters: Annotated[Optional[Path], typer.Option(
        "--adapters", exists=True, file_okay=False,
        help="Folder with one sub-folder per LoRA adapter (all loaded at start-up; run-time loads stay inside it).")
    ] = None,
    task: TaskOpt = DEFAULTS["task"],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    admin_token: Annotated[Optional[str], typer.Option(
        envvar="CONFIDENTLY_ADMIN_TOKEN", show_default=False,
        help="Bearer token for loading/unloading adapters at run time (without it those endpoints are off).")
    ] = None,
    calibration: Annotated[Optional[Path], typer.Option(
        "--calibration", exists=True, file_okay=False,
        help="Calibration bundle for the base model: the run folder of `confidently evaluate` (its calibrator, "
             "policy and manifest). Adapters bring their own.")] = None,
    max_texts: Annotated[int, typer.Option(min=1, help="Most texts per request.")] = 64,
    max_text_tokens: MaxTextTokensOpt = None,
    max_text_chars: MaxTextCharsOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1,
                                            help="Most texts per forward pass; concurrent requests are grouped "
                                                 "up to this size.")] = 16,
    batch_wait_ms: Annotated[float, typer.Option(min=0, help="How long a request waits for others to join "
                                                             "its batch.")] = 5.0,
    max_request_cost: Annotated[int, typer.Option(
        min=1, help="Most a classify request may cost, in characters × forward passes (two per text with "
                    "top_tokens, else one); larger requests get 422.")] = 65536,
    read_timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds a client has to send a whole request (headers and body); then 408.")] = 30.0,
    max_concurrency: Annotated[int, typer.Option(
        min=1, help="Most /v1/ requests in flight at once; more get 503 with Retry-After.")] = 128,
    max_connections: Annotated[int, typer.Option(
        min=1, help="Most open connections; more are answered 503 and closed.")] = 256,
    drain_timeout: Annotated[float, typer.Option(
        min=0.001, help="On SIGTERM or Ctrl-C, seconds the requests in flight have to finish; those still "
                        "running then get 503 with Retry-After.")] = 30.0,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    log_level: Annotated[LogLevel, typer.Option(help="Log level (the server's and uvicorn's).")] = LogLevel.info,
    feedback_db: Annotated[str, typer.Option(
        "--feedback-db", help="Review queue and labels: an SQLite file (created if missing) or a postgresql:// URL "
                              "shared by several replicas; 'none' keeps no queue.")] = "confidently-feedback.db",
    audit_fraction: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of automated texts also sent to review, to measure live accuracy.")] = 0.05,
    canary: Annotated[CanaryAction, typer.Option(
        help="A bundle (--calibration or an adapter) whose golden prompts (canary.json) no longer score as "
             "recorded is refused, marked unhealthy (served, logged, reported at /v1/adapters/NAME/drift and "
             "/metrics), or not checked.")] = CanaryAction.refuse,
    reviewers: Annotated[Optional[Path], typer.Option(
        exists=True, dir_okay=False,
        help='JSON file {"name": "token", ...}: who may use the review page and POST /v1/feedback '
             "(the admin token may too).")] = None,
) -> None:
    """Serve calibrated classification over HTTP: one base model, many LoRA adapters.

    POST /v1/classify, GET /v1/adapters, GET /healthz, GET /metrics; the OpenAPI schema is at
    /openapi.json (no browsable /docs page: it would need a CDN). Large requests are scored in parts,
    taking turns with small ones; a client that disconnects has its remaining work dropped. Options,
    paths and artifacts are checked before the model loads. Without --model the base model is the
    --calibration bundle's, else the one the --adapters were fine-tuned on. On SIGTERM or Ctrl-C, requests in flight
    get --drain-timeout seconds to finish; the log says how many finished and how many got 503.

    A text longer than --max-text-tokens (or --max-text-chars) is cut, flagged `truncated` and decided
    `review`, exactly as `score` and `classify` do; it is never refused for its length. What one request may
    send is limited by --max-texts and --max-request-cost (422) and a 2 MiB body (413).

    Texts decided `review`, and an audit sample of automated ones, enter a review queue (--feedback-db);
    reviewers label them at /review. GET /v1/adapters/NAME/drift reports drift from the calibration rows
    and the live accuracy of automated decisions. Versions written by `confidently recalibrate` are
    applied without a restart; every reply names the bundle version that decided it.

    With --backend openai an engine scores (vLLM with --enable-lora --lora-modules NAME=PATH, or llama.cpp's
    server) and everything else runs here the same. Each adapter is the engine's model of its name
    (--engine-model ADAPTER=NAME maps it to another). The engine's weights cannot be hashed from here: a
    bundle fitted elsewhere (e.g. locally) must pass its canary re-scored through the engine at load; one
    fitted through the engine (`evaluate --backend openai`) is matched by URL and model name. An engine
    failure is a 502 (504 for a timeout) for the requests it concerns.

    Example: `confidently serve --calibration runs/demo --adapters adapters/ --admin-token "$TOKEN" --reviewers reviewers.json --port 8000`

    Example: `confidently serve --backend openai --base-url http://127.0.0.1:8080/v1 --adapters adapters/ --engine-model support=support-v2`
    """
    from confidently.server.app import create_app, load_service
    from confidently.server.runner import configure_logging, listen, make_server
    from confidently.server.settings import Settings
    from confidently.server.startup import adapters_base_model, check_before_loading

    # The bundle is read and its hashes checked before the model loads; --model defaults to its own,
    # else, locally, to the base model the adapters were fine-tuned on.
    bundle = read_calibration(calibration)
    if bundle is not None:
        check_bundle_backend(bundle, calibration, backend.value)
    if bundle is not None and not given(ctx, "model"):
        model = bundle.model.name
    elif adapters is not None and not given(ctx, "model") and backend == ServeBackend.transformers:
        model = adapters_base_model(adapters) or model
    settings = Settings(model=model, backend=backend.value, base_url=base_url, api_key_env=api_key, tokenizer=tokenizer,
                        engine_models=parse_engine_models(engine_model or []), engine_timeout_s=engine_timeout,
                        task=task if given(ctx, "task") else None, adapters_dir=adapters,
                        calibration=calibration, admin_token=admin_token, max_texts=max_texts,
                        max_text_tokens=max_text_tokens, max_text_chars=max_text_chars,
                        max_request_cost=max_request_cost, batch_size=batch_size,
                        batch_wait_ms=batch_wait_ms, device=device, dtype=dtype, read_timeout_s=read_timeout,
                        max_concurrency=max_concurrency, max_connections=max_connections,
                        drain_timeout_s=drain_timeout, feedback_db=None if feedback_db.lower() == "none" else feedback_db,
                        audit_fraction=audit_fraction, reviewer_tokens=read_reviewers(reviewers) if reviewers else {},
                        canary=canary.value)
    check_before_loading(settings)
    sock = listen(host, port)
    configure_logging(log_level.value)
    app = create_app(settings)
    load_service(app)
    make_server(app, log_level=log_level.value).run(sockets=[sock])


def parse_engine_models(pairs: list[str]) -> dict[str, str]:
    """``--engine-model ADAPTER=NAME`` options as adapter name -> engine model name; a malformed one is a usage error."""
    import re

    from confidently.server.schemas import ADAPTER_NAME_PATTERN

    found: dict[str, str] = {}
    for pair in pairs:
        adapter, sep, name = pair.partition("=")
        if not sep or not name.strip() or not re.fullmatch(ADAPTER_NAME_PATTERN, adapter):
            raise typer.BadParameter(f"expected ADAPTER=NAME (an adapter name, '=', the engine's model name), got "
                                     f"{pair!r}", param_hint="--engine-model")
        if adapter in found:
            raise typer.BadParameter(f"adapter {adapter!r} is mapped twice", param_hint="--engine-model")
        found[adapter] = name.strip()
    return found


def read_reviewers(path: Path) -> dict[str, str]:
    """The ``--reviewers`` file: a JSON object of reviewer name -> token (each at least 16 characters)."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise ArtifactError(f'{path}: expected a JSON object {{"reviewer name": "token", ...}}')
    for name, token in data.items():
        if not isinstance(token, str) or len(token) < 16:
            raise ArtifactError(f"{path}: reviewer {name!r}: the token must be a string of at least 16 characters")
    return data
