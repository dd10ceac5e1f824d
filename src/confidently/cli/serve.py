"""``confidently serve``: the HTTP API; and ``classify --server``, which asks a running one."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from confidently.cli.app import app, console
from confidently.cli.options import DEFAULTS, DeviceOpt, DtypeOpt, ModelOpt, TaskOpt
from confidently.errors import ArtifactError
from confidently.files import read_json


class CanaryAction(str, Enum):
    """What ``serve`` does with an adapter whose golden prompts no longer score as recorded."""

    refuse = "refuse"
    mark = "mark"
    off = "off"


@app.command()
def serve(
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
    calibrator: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False,
                                                help="Calibrator .json for the base model.")] = None,
    policy: Annotated[Optional[Path], typer.Option(
        exists=True, dir_okay=False,
        help="Decision policy .json for the base model; applied to raw confidence if there is no --calibrator.")
    ] = None,
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
    feedback_db: Annotated[str, typer.Option(
        "--feedback-db", help="Review queue and labels: an SQLite file (created if missing) or a postgresql:// URL "
                              "shared by several replicas; 'none' keeps no queue.")] = "confidently-feedback.db",
    audit_fraction: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of automated texts also sent to review, to measure live accuracy.")] = 0.05,
    canary: Annotated[CanaryAction, typer.Option(
        help="An adapter whose golden prompts (canary.json) no longer score as recorded is refused, marked "
             "unhealthy (served, logged, reported at /v1/adapters/NAME/drift and /metrics), or not checked.")
    ] = CanaryAction.refuse,
    reviewers: Annotated[Optional[Path], typer.Option(
        exists=True, dir_okay=False,
        help='JSON file {"name": "token", ...}: who may use the review page and POST /v1/feedback '
             "(the admin token may too).")] = None,
) -> None:
    """Serve calibrated classification over HTTP: one base model, many LoRA adapters.

    POST /v1/classify, GET /v1/adapters, GET /healthz, GET /metrics; the OpenAPI schema is at
    /openapi.json and browsable at /docs. On SIGTERM or Ctrl-C, requests in flight finish first.

    Texts decided `review`, and an audit sample of automated ones, enter a review queue (--feedback-db);
    reviewers label them at /review. GET /v1/adapters/NAME/drift reports drift from the calibration rows
    and the live accuracy of automated decisions.

    Example: `confidently serve --adapters adapters/ --admin-token "$TOKEN" --reviewers reviewers.json --port 8000`
    """
    import uvicorn

    from confidently.server.app import create_app
    from confidently.server.settings import Settings

    settings = Settings(model=model, task=task, adapters_dir=adapters, calibrator=calibrator, policy=policy,
                        admin_token=admin_token, max_texts=max_texts, max_text_chars=max_text_chars,
                        batch_size=batch_size, batch_wait_ms=batch_wait_ms, device=device, dtype=dtype,
                        feedback_db=None if feedback_db.lower() == "none" else feedback_db,
                        audit_fraction=audit_fraction, reviewer_tokens=read_reviewers(reviewers) if reviewers else {},
                        canary=canary.value)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=int(settings.shutdown_timeout_s))


def read_reviewers(path: Path) -> dict[str, str]:
    """The ``--reviewers`` file: a JSON object of reviewer name -> token (each at least 16 characters)."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise ArtifactError(f'{path}: expected a JSON object {{"reviewer name": "token", ...}}')
    for name, token in data.items():
        if not isinstance(token, str) or len(token) < 16:
            raise ArtifactError(f"{path}: reviewer {name!r}: the token must be a string of at least 16 characters")
    return data


def classify_remote(server: str, text: str, *, adapter: str | None, top_k: int, as_json: bool) -> None:
    """``confidently classify --server URL``: print the server's answer for one text."""
    from confidently.client import Client

    with Client(server) as client:
        reply = client.classify([text], adapter=adapter, top_tokens=top_k)
    if as_json:
        console.print_json(reply.model_dump_json())
        return
    result = reply.results[0]
    calibrated = ("uncalibrated" if result.calibrated_confidence is None
                  else f"calibrated {result.calibrated_confidence:.4f}")
    decision = f"  decision [bold]{result.decision}[/]" if result.decision else ""
    console.print(f"[bold]{result.label}[/]  confidence {result.confidence:.4f} raw, {calibrated}{decision}"
                  + ("  [yellow]text truncated[/]" if result.truncated else ""))
    table = Table(title=f"{reply.model}" + (f" + {reply.adapter}" if reply.adapter else ""))
    for column in ("label", "raw", "calibrated"):
        table.add_column(column)
    for label in reply.labels:
        cal = "" if result.calibrated_probs is None else f"{result.calibrated_probs[label]:.4f}"
        table.add_row(label, f"{result.probs[label]:.4f}", cal)
    table.add_row("(other mass)", f"{result.other_mass:.6f}", "")
    console.print(table)
    if result.top_tokens:
        console.print("top tokens: " + ", ".join(f"{json.dumps(t.token)} {t.prob:.4f}" for t in result.top_tokens))
