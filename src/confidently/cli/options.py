"""Options shared by every command that loads a model, and the one place they become a Classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from confidently.defaults import DEFAULT_BATCH_SIZE
from confidently.models import DEFAULT_MODEL

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registry name (see `confidently models`), "
                                       "local folder, .gguf file or hub id.")]
TaskOpt = Annotated[str, typer.Option("--task", "-t", help="Built-in task name or a task .json file.")]
BackendOpt = Annotated[str, typer.Option("--backend", help="transformers (local) or openai (a server).")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:1 …")]
DtypeOpt = Annotated[Optional[str], typer.Option(
    "--dtype", help="auto (bf16 on CUDA, float32 on CPU), float32, bfloat16, float16.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Prompts per forward pass.")]
BaseUrlOpt = Annotated[Optional[str], typer.Option(
    "--base-url", help="openai backend: server URL, e.g. http://127.0.0.1:8080/v1")]
ApiKeyOpt = Annotated[Optional[str], typer.Option(
    "--api-key", help="openai backend: NAME of the environment variable holding the API key.")]
AdapterOpt = Annotated[Optional[Path], typer.Option("--adapter", help="A LoRA adapter folder made by `finetune`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
MaxTextTokensOpt = Annotated[Optional[int], typer.Option(
    "--max-text-tokens", min=8, show_default=False,
    help="Longest text scored whole, in tokens; a longer one is truncated (and flagged). "
         "[default: 2048, or the model's context when less]")]
MaxTextCharsOpt = Annotated[Optional[int], typer.Option(
    "--max-text-chars", min=8, show_default=False,
    help="A text longer than this many characters is cut (same rule, flagged) before it is tokenized. "
         "[default: 16 per --max-text-tokens]")]

DEFAULTS = {"model": DEFAULT_MODEL, "task": "sentiment", "backend": "transformers", "batch_size": DEFAULT_BATCH_SIZE}


def build_classifier(*, model: str, task: str, backend: str, device: str | None = None, dtype: str | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, base_url: str | None = None, api_key: str | None = None,
                     adapter: Path | None = None, chat: bool | None = None, quiet: bool = False,
                     max_text_tokens: int | None = None, max_text_chars: int | None = None):
    """Load the classifier a command asked for (heavy imports happen here, not at CLI start-up)."""
    from confidently.classifier import Classifier
    from confidently.cli.app import err_console

    if adapter is not None and not adapter.is_dir():  # found before the model loads
        raise typer.BadParameter(f"{adapter} is not a folder: give an adapter folder made by `confidently finetune`",
                                 param_hint="--adapter")
    options: dict = {}
    if backend == "transformers":
        options.update(device=device, dtype=dtype, console=None if quiet else err_console)
    else:
        options.update(base_url=base_url, api_key_env=api_key)
    if adapter is not None:
        options["adapter"] = str(adapter)
    if not quiet:
        err_console.print(f"[dim]loading {model} ({backend})…[/]")
    return Classifier(model=model, task=task, backend=backend, batch_size=batch_size, chat=chat,
                      max_text_tokens=max_text_tokens, max_text_chars=max_text_chars, **options)
