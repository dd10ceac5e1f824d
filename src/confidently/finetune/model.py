"""The LoRA adapter being trained, attached to the backend's own model, and the answer-only forward pass.

Training adds an adapter to the one base model the backend already holds (no second copy) and
removes it afterwards. The forward pass mirrors scoring: the prompt prefix every example shares is
run once per batch (its keys and values, which depend on the adapter, are repeated for every row and
keep their gradient), and the LM head is applied only at the positions that predict answer tokens
(``logits_to_keep``), which matters with vocabularies of 150k-260k tokens.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from confidently.backends.transformers_backend import TransformersBackend
from confidently.finetune.config import DEFAULT_TARGET_MODULES, FinetuneConfig
from confidently.finetune.data import IGNORE, Batch

#: Name of the adapter while it trains (the saved folder's name is used once it is loaded back).
TRAINING_ADAPTER = "confidently-training"


def lora_config(backend: TransformersBackend, config: FinetuneConfig):
    """The PEFT ``LoraConfig`` for ``config`` on this model (default targets by model type)."""
    from peft import LoraConfig

    model_type = getattr(backend.model.config, "model_type", "")
    targets = config.target_modules or DEFAULT_TARGET_MODULES.get(model_type)
    return LoraConfig(r=config.r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(targets) if targets else None, bias="none", task_type="CAUSAL_LM")


@contextlib.contextmanager
def training_adapter(backend: TransformersBackend, config: FinetuneConfig, seed: int) -> Iterator[object]:
    """Attach a fresh LoRA adapter (initialised from ``seed``) to ``backend.model`` and yield the PEFT model.

    On exit the adapter is removed and the backend is as it was: same model object or PEFT wrapper,
    same active adapter, prefix cache cleared (cached keys and values were computed with other weights).
    """
    import torch
    from peft import PeftModel, get_peft_model

    from confidently.errors import ConfigError

    wrapped_before = isinstance(backend.model, PeftModel)
    torch.manual_seed(seed)
    try:
        with warnings.catch_warnings():
            # PEFT calls a transformers method deprecated in 5.x; nothing for our users to act on.
            warnings.simplefilter("ignore", FutureWarning)
            if wrapped_before:
                backend.model.add_adapter(TRAINING_ADAPTER, lora_config(backend, config))
                backend.model.base_model.enable_adapter_layers()
                backend.model.set_adapter(TRAINING_ADAPTER)
            else:
                backend.model = get_peft_model(backend.model, lora_config(backend, config),
                                               adapter_name=TRAINING_ADAPTER)
    except ValueError as error:  # PEFT: target modules not found in the model
        raise ConfigError(f"cannot attach LoRA to {backend.model_name}: {error}") from None
    backend.clear_prefix_cache()
    try:
        yield backend.model
    finally:
        backend.model.eval()
        if wrapped_before:
            with warnings.catch_warnings():
                # PEFT says it activates another adapter; set_adapter below restores the right one.
                warnings.simplefilter("ignore", UserWarning)
                backend.model.delete_adapter(TRAINING_ADAPTER)
            backend.set_adapter(backend.active_adapter)
        else:
            backend.model = backend.model.unload()
        backend.clear_prefix_cache()


def trainable_state(model) -> dict:
    """The adapter's weights under PEFT's saved names (``...q_proj.lora_A.weight``), detached copies."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model, adapter_name=TRAINING_ADAPTER)
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in state.items()}


def load_trainable_state(model, state: dict) -> None:
    """Put weights from :func:`trainable_state` back into the training adapter."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(model, state, adapter_name=TRAINING_ADAPTER)
    missing = [k for k in result.missing_keys if TRAINING_ADAPTER in k]
    if missing:
        raise RuntimeError(f"adapter weights missing from the checkpoint: {missing[:3]}")


def answer_logits(model, batch: Batch, prefix: tuple[int, ...], cache_kwarg: str):
    """Logits at the last ``batch.keep`` positions, shape (n, keep, vocab), float32.

    With a shared prefix, the decoder runs it once (with gradient) and its cache is repeated for
    every row; ``position_ids`` in the batch already continue after it. The LM head is applied to a
    contiguous copy of the kept hidden states: on a strided slice that needs gradient, ``matmul``
    would multiply against a batch-expanded copy of the (vocab x hidden) weight instead, ~3x slower.
    """
    import torch

    base = model.get_base_model()
    decoder = base.model
    device = next(model.parameters()).device
    n = batch.input_ids.shape[0]
    attention = batch.attention_mask
    cache = None
    if prefix:
        out = decoder(input_ids=torch.tensor([prefix], device=device), use_cache=True)
        cache = getattr(out, "cache", None) or out.past_key_values
        if n > 1:
            cache.batch_repeat_interleave(n)
        attention = torch.cat([torch.ones((n, len(prefix)), dtype=torch.long), attention], dim=1)
    hidden = decoder(input_ids=batch.input_ids.to(device), attention_mask=attention.to(device),
                     position_ids=batch.position_ids.to(device), use_cache=cache is not None,
                     **{cache_kwarg: cache}).last_hidden_state
    kept = hidden[:, -batch.keep:].contiguous()
    logits = base.get_output_embeddings()(kept.reshape(-1, kept.shape[-1])).float()
    # Gemma-style models squash the logits (transformers applies the same after its LM head).
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits.reshape(n, batch.keep, -1)


def answer_loss(logits, batch: Batch, *, reduction: str = "sum"):
    """Cross-entropy of the answer tokens only (every other position is ``-100`` and ignored)."""
    import torch

    labels = batch.labels[:, -batch.keep:].to(logits.device)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=IGNORE, reduction=reduction)
