"""``confidently serve``: the HTTP API; and ``classify --server``, which asks a running one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from confidently.cli.app import app, console
from confidently.cli.options import DEFAULTS, DeviceOpt, DtypeOpt, ModelOpt, TaskOpt, given, read_calibration


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
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve calibrated classification over HTTP: one base model, many LoRA adapters.

    POST /v1/classify, GET /v1/adapters, GET /healthz, GET /metrics; the OpenAPI schema is at
    /openapi.json and browsable at /docs. On SIGTERM or Ctrl-C, requests in flight finish first.

    Example: `confidently serve --calibration runs/demo --adapters adapters/ --admin-token "$TOKEN" --port 8000`
    """
    import uvicorn

    from confidently.server.app import create_app
    from confidently.server.settings import Settings

    # The bundle is read and checked before the model loads; --model and --task default to its own.
    bundle = read_calibration(calibration)
    if bundle is not None:
        from confidently.models import resolve_model
        from confidently.tasks import get_task

        model = model if given(ctx, "model") else bundle.model.name
        bundle.check_model(resolve_model(model).weights_id, None, name=model)
        if given(ctx, "task"):
            bundle.check_task(get_task(task), None)
    settings = Settings(model=model, task=task if given(ctx, "task") else None, adapters_dir=adapters,
                        calibration=calibration, admin_token=admin_token, max_texts=max_texts, max_text_chars=max_text_chars,
                        batch_size=batch_size, batch_wait_ms=batch_wait_ms, device=device, dtype=dtype)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=int(settings.shutdown_timeout_s))


def classify_remote(server: str, text: str, *, adapter: str | None, top_k: int, as_json: bool) -> None:
    """``confidently classify --server URL``: print the server's answer for one text."""
    from confidently.cli.scoring import answer_line
    from confidently.client import Client

    with Client(server) as client:
        reply = client.classify([text], adapter=adapter, top_tokens=top_k)
    if as_json:
        console.print_json(reply.model_dump_json())
        return
    result = reply.results[0]
    console.print(f"[bold]{text!r}[/] →")
    console.print(answer_line(result.label, result.confidence, result.calibrated, result.decision, reply.guarantee))
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
