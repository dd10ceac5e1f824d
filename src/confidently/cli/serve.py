"""``confidently serve``: the HTTP API; and ``classify --server``, which asks a running one."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from confidently.cli.app import app, console
from confidently.cli.options import DEFAULTS, DeviceOpt, DtypeOpt, ModelOpt, TaskOpt, given, read_calibration


class LogLevel(str, Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


@app.command()
def serve(
    ctx: typer.Context,
    model: ModelOpt = DEFAULTS["model"],
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
    max_text_chars: Annotated[int, typer.Option(min=1, help="Longest text accepted, in characters.")] = 8192,
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
) -> None:
    """Serve calibrated classification over HTTP: one base model, many LoRA adapters.

    POST /v1/classify, GET /v1/adapters, GET /healthz, GET /metrics; the OpenAPI schema is at
    /openapi.json (no browsable /docs page: it would need a CDN). Large requests are scored in parts,
    taking turns with small ones; a client that disconnects has its remaining work dropped. Options,
    paths and artifacts are checked before the model loads. On SIGTERM or Ctrl-C, requests in flight
    get --drain-timeout seconds to finish; the log says how many finished and how many got 503.

    Example: `confidently serve --calibration runs/demo --adapters adapters/ --admin-token "$TOKEN" --port 8000`
    """
    from confidently.server.app import create_app, load_service
    from confidently.server.runner import configure_logging, listen, make_server
    from confidently.server.settings import Settings
    from confidently.server.startup import check_before_loading

    # The bundle is read and its hashes checked before the model loads; --model defaults to its own.
    bundle = read_calibration(calibration)
    if bundle is not None and not given(ctx, "model"):
        model = bundle.model.name
    settings = Settings(model=model, task=task if given(ctx, "task") else None, adapters_dir=adapters,
                        calibration=calibration, admin_token=admin_token, max_texts=max_texts,
                        max_text_chars=max_text_chars, max_request_cost=max_request_cost, batch_size=batch_size,
                        batch_wait_ms=batch_wait_ms, device=device, dtype=dtype, read_timeout_s=read_timeout,
                        max_concurrency=max_concurrency, max_connections=max_connections,
                        drain_timeout_s=drain_timeout)
    check_before_loading(settings)
    sock = listen(host, port)
    configure_logging(log_level.value)
    app = create_app(settings)
    load_service(app)
    make_server(app, log_level=log_level.value).run(sockets=[sock])


def classify_remote(server: str, text: str, *, adapter: str | None, top_k: int, as_json: bool) -> None:
    """``confidently classify --server URL``: print the server's answer for one text."""
    from confidently.cli.scoring import answer_line, set_line
    from confidently.client import Client

    with Client(server) as client:
        reply = client.classify([text], adapter=adapter, top_tokens=top_k)
    if as_json:
        console.print_json(reply.model_dump_json())
        return
    result = reply.results[0]
    console.print(f"[bold]{text!r}[/] →")
    console.print(answer_line(result.label, result.confidence, result.calibrated, result.decision, reply.threshold,
                              reply.guarantee, decided_by=reply.decision_rule))
    if result.calibrated or result.prediction_set is not None:
        console.print(set_line(result.prediction_set, reply.set_guarantee, "no prediction set: the server's bundle "
                               "carries none, or its sets need a group value"))
    if result.truncated:
        console.print("[yellow]text truncated to fit the model's context[/]")
    if result.calibrated:
        console.print(f"raw: {result.raw_label} {result.raw_confidence:.4f} (share of label mass, uncalibrated)")
    table = Table(title=f"{reply.model}" + (f" + {reply.adapter}" if reply.adapter else ""))
    for column in ("label", "raw share", "calibrated"):
        table.add_column(column)
    for label in reply.labels:
        cal = "" if result.calibrated_probs is None else f"{result.calibrated_probs[label]:.4f}"
        table.add_row(label, f"{result.raw_probs[label]:.4f}", cal)
    table.add_row("(other mass)", f"{result.other_mass:.6f}", "")
    console.print(table)
    if result.top_tokens:
        console.print("top tokens: " + ", ".join(f"{json.dumps(t.token)} {t.prob:.4f}" for t in result.top_tokens))
