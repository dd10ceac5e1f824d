"""``confidently canary DIR``: re-score a bundle's golden prompts and say whether the scores still hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from confidently.canary import CANARY_FILE, Canary, CanaryFailedError
from confidently.cli.app import app, console
from confidently.cli.options import ApiKeyOpt, BaseUrlOpt, DeviceOpt, DtypeOpt, JsonOpt
from confidently.errors import ConfidentlyError


@app.command()
def canary(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                           help=f"Bundle or adapter folder holding {CANARY_FILE}.")],
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Base model to re-score on (default: the one the canary was recorded with); "
                              "with --base-url, the served model name.")] = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    server: Annotated[Optional[str], typer.Option(
        "--server", help="Re-score on a running `confidently serve` (URL) instead of a local model.")] = None,
    adapter: Annotated[Optional[str], typer.Option(
        "--adapter", help="With --server: the adapter to ask for.")] = None,
    no_adapter: Annotated[bool, typer.Option(
        "--no-adapter", help="Locally, do not load the folder's LoRA weights (measures the base model).")] = False,
    tolerance: Annotated[Optional[float], typer.Option(
        min=0.0, max=1.0, help="Override the canary's tolerance (largest accepted probability change).")] = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-score the golden prompts stored with a calibrator and compare with the recorded probabilities.

    Locally (the folder's LoRA adapter is loaded when it has one), on an OpenAI-compatible server
    (--base-url) or on a running confidently server (--server). Reports the largest and mean change of
    the raw class probabilities; exits 1 when the largest exceeds the tolerance: the model is not the one
    the calibrator was fitted for (another base, a no-op adapter, another engine or precision).

    Example: confidently canary runs/my-adapter --server http://127.0.0.1:8000 --adapter support
    """
    recorded = Canary.load(folder / CANARY_FILE)
    if tolerance is not None:
        recorded = Canary(recorded.task, recorded.chat, recorded.texts, recorded.true_labels, recorded.probs,
                          tolerance, recorded.scored_with)
    texts = list(recorded.texts)
    if server is not None:
        from confidently.client import Client

        with Client(server) as client:
            reply = client.classify(texts, adapter=adapter)
        probs = np.array([[r.probs[label] for label in recorded.task.label_names] for r in reply.results])
        where = f"server {server}" + (f" adapter {adapter}" if adapter else "")
    else:
        from confidently.cli.options import build_classifier

        has_adapter = (folder / "adapter_config.json").exists() and not no_adapter
        name = model or recorded.scored_with.get("model")
        if name is None:
            raise ConfidentlyError(f"{folder / CANARY_FILE} does not name its model: pass --model")
        classifier = build_classifier(model=name, task=recorded.task, backend="openai" if base_url else "transformers",
                                      device=device, dtype=dtype, base_url=base_url, api_key=api_key,
                                      adapter=folder if has_adapter and not base_url else None, chat=recorded.chat,
                                      quiet=as_json)
        probs = classifier.score(texts).probs
        where = f"{name}" + (" + the folder's adapter" if has_adapter and not base_url else "")
    result = recorded.check(probs)
    if as_json:
        console.print_json(json.dumps({"scored_on": where, **result.to_dict()}))
    else:
        console.print(f"{where}: {result.describe()}")
        if not result.passed:
            console.print(f"largest change on: {result.worst_text!r}", highlight=False)
    if not result.passed:
        raise CanaryFailedError(f"canary failed on {where}: max deviation {result.max_deviation:.4g} > tolerance "
                                f"{result.tolerance:g}; the calibrator does not hold for this model")
