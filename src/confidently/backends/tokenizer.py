"""A model's tokenizer alone, without its weights: for rendering chat templates and finding label ids
when the model itself runs on a server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from confidently.errors import ModelLoadError
from confidently.models.registry import REGISTRY, dequantized_dir, dequantized_identity, resolve_model
from confidently.models.verified_cache import cache_problem


@dataclass(frozen=True)
class LoadedTokenizer:
    """A transformers tokenizer and the id of the weights it belongs to."""

    tokenizer: object
    weights_id: str


def is_local_model(name: str) -> bool:
    """Whether ``name`` is a registry model or a local model folder / ``.gguf`` file."""
    path = Path(name).expanduser()
    return name in REGISTRY or path.is_dir() or (path.is_file() and path.suffix == ".gguf")


def load_tokenizer(name: str) -> LoadedTokenizer:
    """The tokenizer of a registry model, local folder, ``.gguf`` file or hub id.

    A GGUF's tokenizer is read from its de-quantized copy when the transformers backend already made
    one (fast), else from the GGUF itself.

    Raises
    ------
    UnknownModelError, ModelLoadError
        When the model cannot be found or its tokenizer cannot be read.
    """
    from transformers import AutoTokenizer

    source = resolve_model(name)
    folder, gguf_file = Path(source.path), source.gguf_file
    if gguf_file is not None and cache_problem(dequantized_dir(source), dequantized_identity(source)) is None:
        folder, gguf_file = dequantized_dir(source), None
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file,
                                                  local_files_only=os.path.isdir(folder))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot load the tokenizer of {name!r}: {error}") from None
    return LoadedTokenizer(tokenizer, source.weights_id)

