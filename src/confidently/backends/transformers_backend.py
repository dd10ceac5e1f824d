"""The local backend: a causal language model run with transformers and torch.

One forward pass per batch of prompts, never ``generate()``; only the last position's logits are
computed (``logits_to_keep``); prompts are left-padded; the prompt prefix every example shares is
run once and its KV cache reused for every batch. Answers for the black-box scorers are decoded
from the same pass (:meth:`TransformersBackend.generate`): each prompt is read once, whatever the
number of sampled answers. With ``batch_invariant`` (``dtype="bf16-invariant"``)
the forward pass runs on the kernels of :mod:`confidently.backends.invariant`, so a text's scores are
bit-identical whatever shares its batch.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from confidently.backends.base import Backend, Generated, sample_seed
from confidently.backends.text_as_data import encode_prompt, encode_text, special_token_ids
from confidently.errors import ConfigError, ModelLoadError
from confidently.models.registry import DEFAULT_MODEL, ModelSource, dequantized_dir, dequantized_identity, resolve_model
from confidently.models.verified_cache import ensure_cache

# Plain bfloat16 scores depend on batch composition, on CPU and on CUDA (README "Precision"), so
# float32 is the default on every device; the batch-invariant bfloat16 mode is opt-in.
DEFAULT_DTYPE = "float32"
_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}
# Names that select bfloat16 with the batch-invariant kernels.
INVARIANT_DTYPES = {"bf16-invariant": "bfloat16", "bfloat16-invariant": "bfloat16"}
# PEFT's name for the rows of a mixed-adapter batch that the bare base model scores.
BASE_ROWS = "__base__"


def choose_device(device: str | None) -> str:
    """The torch device to run on: ``auto`` picks CUDA when present; a named device must exist here."""
    import torch

    if not device or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {device!r}: this torch build ({torch.__version__}) sees no CUDA device; "
                              "use --device cpu (or auto)")
        if parsed.index is not None and parsed.index >= count:
            raise ConfigError(f"device {device!r}: there are {count} CUDA devices (cuda:0 to cuda:{count - 1})")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available here; use --device cpu (or auto)")
    return device


def choose_dtype(dtype: str | None) -> str:
    """The torch dtype name ``dtype`` selects (``auto``/None: float32 on every device)."""
    if dtype and dtype != "auto":
        if dtype in INVARIANT_DTYPES:
            return INVARIANT_DTYPES[dtype]
        if dtype not in _DTYPES:
            raise ModelLoadError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16, bf16-invariant or float16")
        return _DTYPES[dtype]
    return DEFAULT_DTYPE


def choose_batch_invariant(batch_invariant: bool | None, dtype: str | None, device: str) -> bool:
    """Whether to run the batch-invariant kernels: asked for directly or by an ``*-invariant`` dtype."""
    wanted = bool(batch_invariant) or dtype in INVARIANT_DTYPES
    if wanted and not device.startswith(("cpu", "cuda")):
        raise ConfigError(f"the batch-invariant kernels run on CPU and CUDA, not on {device}: use --device cpu")
    return wanted


def _local_folder(source: ModelSource, dtype: str, console=None) -> tuple[str, bool]:
    """A folder transformers can load quickly; GGUFs are de-quantized once and cached (verified), per dtype."""
    if source.gguf_file is None:
        return source.path, os.path.isdir(source.path)
    say = None if console is None else (lambda message: console.print(message, markup=False, highlight=False))
    folder = ensure_cache(dequantized_dir(source), dequantized_identity(source),
                          lambda staging: _dequantize(source, staging, console), say=say)
    if dtype == "float32":
        return str(folder), True
    # A copy in the narrower dtype: loading it reads only its own bytes, whereas converting at load
    # keeps the float32 file's pages resident beside the converted weights (qwen-0.5B bf16: peak
    # RSS 3.9 GiB at load instead of 0.5).
    narrow = ensure_cache(folder.with_name(f"{folder.name}-{dtype}"), {**dequantized_identity(source), "dtype": dtype},
                          lambda staging: _narrow(folder, dtype, staging), say=say)
    return str(narrow), True


def _dequantize(source: ModelSource, staging: Path, console=None) -> None:
    """Write the GGUF's weights at full precision, and its tokenizer, into ``staging``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if console is not None:
        console.print(f"[dim]de-quantizing {source.gguf_file} once, which takes 15-70 s (cached in {dequantized_dir(source)})…[/]")
    gguf_path = Path(source.path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path, gguf_file=source.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(gguf_path, gguf_file=source.gguf_file, dtype="float32")
    except Exception as error:  # transformers raises many types for unreadable GGUFs
        raise ModelLoadError(f"cannot load {gguf_path / source.gguf_file}: {error}") from error
    # A model loaded from GGUF refuses save_pretrained until its quantizer is detached.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)


def _narrow(folder: Path, dtype: str, staging: Path) -> None:
    """Write the de-quantized weights of ``folder`` converted to ``dtype`` (as loading would convert them)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), local_files_only=True)
    model.save_pretrained(staging, safe_serialization=True)
    AutoTokenizer.from_pretrained(folder, local_files_only=True).save_pretrained(staging)


class TransformersBackend(Backend):
    """A local causal LM.

    Parameters
    ----------
    model : registry name, local folder, ``.gguf`` file or hub id.
    device : ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:1``...
    dtype : ``auto`` (float32 on every device), ``float32``, ``bfloat16``, ``float16``, or
        ``bf16-invariant`` (bfloat16 with ``batch_invariant``).
    adapter : a LoRA adapter folder to load and activate (more can be loaded with :meth:`load_adapter`).
    batch_invariant : run the kernels of :mod:`confidently.backends.invariant` (CPU, CUDA): a text's
        scores are identical alone, in any batch, with any padding, with or without the prefix cache.

    Attributes
    ----------
    precision : what the scores were computed in (``float32``, ``bfloat16``, ``bfloat16-invariant``...);
        calibrators fitted on one precision's scores should be applied to the same precision.
    """

    name = "transformers"
    exact = True
    mixed_adapter_batches = True

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str | None = None, dtype: str | None = None,
                 adapter: str | None = None, batch_invariant: bool | None = None, console=None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_name = model
        self.source = resolve_model(model)
        self.weights_id = self.source.weights_id
        self.device = choose_device(device)
        self.dtype = choose_dtype(dtype)
        self.batch_invariant = choose_batch_invariant(batch_invariant, dtype, self.device)
        self.precision = f"{self.dtype}-invariant" if self.batch_invariant else self.dtype
        folder, local = _local_folder(self.source, self.dtype, console)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=local)
            self.model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=getattr(torch, self.dtype), local_files_only=local
            ).to(self.device)
        except OSError as error:
            raise ModelLoadError(f"cannot load model {model!r}: {error}") from None
        self.model.eval()
        if self.batch_invariant:
            from confidently.backends import invariant

            invariant.make_invariant(self.model)
        self._vocab: list[str] | None = None
        self._prefix_cache: dict[tuple[str | None, tuple[int, ...]], object] = {}
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id or 0
        self._adds_bos = self._detect_bos()
        self._special_ids = special_token_ids(self.tokenizer)
        self.active_adapter: str | None = None
        self.adapters: dict[str, str] = {}  # name → sha256 of the adapter weights
        # transformers 5.x renamed the forward argument ``past_key_values`` to ``cache``.
        params = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        if adapter is not None:
            self.load_adapter(adapter)

    def _detect_bos(self) -> bool:
        bos = self.tokenizer.bos_token_id
        ids = self.tokenizer("x").input_ids
        return bos is not None and len(ids) > 0 and ids[0] == bos

    # -- prompts ---------------------------------------------------------------------------
    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def format_prompt(self, message: str, *, chat: bool | None = None, system_prompt: str | None = None,
                      answer_suffix: str = "\nAnswer:") -> str:
        use_chat = self.has_chat_template if chat is None else chat
        if use_chat and not self.has_chat_template:
            raise ModelLoadError(f"model {self.model_name!r} has no chat template: use --raw / chat=False")

        def render(text: str) -> str:
            if use_chat:
                messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
                messages.append({"role": "user", "content": text})
                return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            bos = self.tokenizer.bos_token if self._adds_bos else ""
            return f"{bos}{text}{answer_suffix}"

        rendered = render(message)
        self.text_slots.record(rendered, message, render)
        return rendered

    # -- vocabulary ----------------------------------------------------------------------------
    def vocabulary(self) -> list[str]:
        if self._vocab is None:
            size = self.model.get_output_embeddings().weight.shape[0]
            known = len(self.tokenizer)
            vocab = self.tokenizer.batch_decode([[i] for i in range(min(size, known))])
            # Embedding rows past the tokenizer (padding for alignment) never hold a word.
            self._vocab = vocab + [""] * (size - len(vocab))
        return self._vocab

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def encode_text(self, text: str) -> list[int]:
        return encode_text(self.tokenizer, text)

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of a prompt this backend rendered: its template's special tokens are control tokens,
        the user text in it is plain text whatever it holds."""
        return encode_prompt(self.tokenizer, prompt, self.text_slots.span(prompt), self._special_ids)[0]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    @property
    def max_context(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)

    def fingerprint(self) -> str:
        adapter = self.adapters[self.active_adapter] if self.active_adapter else "-"
        return f"{self.name}:{self.weights_id}:{self.precision}:{adapter}"

    # -- LoRA adapters: many on one base model, one active at a time ------------------------------
    def load_adapter(self, path: str | Path, name: str | None = None, *, activate: bool = True) -> str:
        """Load a PEFT LoRA adapter onto the base model (no second model copy) and return its name.

        A folder with a ``manifest.json`` (written by ``confidently finetune``) is read as a calibration
        bundle first: every file's sha256 is checked and other base weights are refused. A bare PEFT
        folder (no manifest) loads as it is; the CLI and the server accept only bundles.
        """
        from peft import PeftModel

        from confidently.errors import ArtifactError
        from confidently.files import sha256_file

        folder = Path(path)
        weights = folder / "adapter_model.safetensors"
        if not weights.exists() or not (folder / "adapter_config.json").exists():
            raise ArtifactError(f"{folder} is not a LoRA adapter (needs adapter_config.json and "
                                "adapter_model.safetensors)")
        if (folder / "manifest.json").exists():
            from confidently.bundle.bundle import read_bundle

            bundle = read_bundle(folder)
            bundle.check_model(self.weights_id, bundle.model.adapter_sha256, name=self.model_name)
        name = name or folder.name
        self._forget_prefixes(name)  # a reloaded name must not reuse the old weights' prefix KV
        with warnings.catch_warnings():
            # peft asks transformers a deprecated question about gradient checkpointing; not ours to fix.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            # The adapter's weights stay in the model's dtype (PEFT would upcast bfloat16 ones to float32):
            # PEFT's mixed-adapter batches round each LoRA output to the model's dtype before adding it,
            # so only then does a row score the same in a mixed batch as in its adapter's own.
            if isinstance(self.model, PeftModel):
                if name in self.adapters:
                    self.model.delete_adapter(name)
                self.model.load_adapter(str(folder), adapter_name=name, is_trainable=False,
                                        autocast_adapter_dtype=False)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name,
                                                       is_trainable=False, autocast_adapter_dtype=False)
        self.model.eval()
        self.adapters[name] = sha256_file(weights)
        if activate:
            self.set_adapter(name)
        else:
            self.set_adapter(self.active_adapter)
        return name

    def set_adapter(self, name: str | None) -> None:
        """Score with adapter ``name``, or with the bare base model when ``name`` is None."""
        from confidently.errors import ArtifactError

        if name is not None and name not in self.adapters:
            raise ArtifactError(f"no adapter named {name!r} is loaded (loaded: {', '.join(self.adapters) or 'none'})")
        if not self.adapters:
            return
        if name is None:
            self.model.base_model.disable_adapter_layers()
        else:
            self.model.base_model.enable_adapter_layers()
            self.model.set_adapter(name)
        self.active_adapter = name

    def unload_adapter(self, name: str) -> None:
        if name not in self.adapters:
            return
        if self.active_adapter == name:
            self.set_adapter(None)
        self.model.delete_adapter(name)
        del self.adapters[name]
        self._forget_prefixes(name)
        if not self.adapters:  # a PEFT wrapper with no adapter left cannot score: back to the bare model
            self.model = self.model.unload()
            self.active_adapter = None

    def _forget_prefixes(self, adapter: str) -> None:
        self._prefix_cache = {k: v for k, v in self._prefix_cache.items() if k[0] != adapter}

    # -- scoring -------------------------------------------------------------------------------
    def next_token_logprobs(self, prompts: Sequence[str], *, shared_prefix: str = "",
                            adapters: Sequence[str | None] | None = None) -> np.ndarray:
        """Next-token log-probabilities, shape (n_prompts, vocab); see :meth:`Backend.next_token_logprobs`.

        ``adapters`` names, per prompt, the adapter to score it with (None: the bare base model), so
        prompts for different adapters share one forward pass; without it every prompt uses the
        active adapter. A prompt's scores are the same as in a batch of its adapter alone.
        """
        ids, prefix = self._split(prompts, shared_prefix)
        return self._forward(ids, prefix, keep=1, adapters=adapters)[:, -1].numpy()

    def next_token_logprobs_and_hidden(self, prompts: Sequence[str], *,
                                       shared_prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
        ids, prefix = self._split(prompts, shared_prefix)
        captured: list = []
        # The output layer's input at the last position is the final (normed) hidden state; a hook
        # reads it from the very pass that gives the logits, so the probe costs no second pass.
        hook = self.model.get_output_embeddings().register_forward_pre_hook(
            lambda module, args: captured.append(args[0][:, -1].float().cpu()))
        try:
            logprobs = self._forward(ids, prefix, keep=1)[:, -1].numpy()
        finally:
            hook.remove()
        # The last call is the batch's pass (a prefix not yet cached runs through the model first).
        return logprobs, captured[-1].numpy().astype(np.float32)

    def generate(self, prompts: Sequence[str], *, samples: int, max_new_tokens: int, temperature: float,
                 seed: int, shared_prefix: str = "", settled: Callable[[str], bool] | None = None
                 ) -> list[list[Generated]]:
        """See :meth:`Backend.generate`. Each prompt is read once, past the cached ``shared_prefix`` (as
        scoring reads it), and its KV cache copied for its ``samples`` answers; then the answers of the
        batch are decoded together, one token a step, each until it ends (a stop token, ``settled``, or
        ``max_new_tokens``); an ended answer leaves the batch. Each answer is drawn with its own generator
        seeded by :func:`sample_seed` (:class:`_SeededSampler`), so a text's answers do not depend on the
        rest of its batch (up to the float32 rounding that padding changes, ~1e-6 in a logit)."""
        import torch

        stops = set(self._stop_ids())
        ids, prefix = self._split(prompts, shared_prefix)
        logits, (cache, mask, position) = self._pass(ids, prefix, keep=1, keep_cache=True)
        logits = logits[:, -1]  # log-probabilities: sampling and argmax are the same on them as on logits
        if samples > 1:
            cache.batch_repeat_interleave(samples)
            logits, mask, position = (t.repeat_interleave(samples, dim=0) for t in (logits, mask, position))
        draw = _SeededSampler(temperature, [sample_seed(seed, p, i) for p in prompts for i in range(samples)])
        tokens: list[list[int]] = [[] for _ in range(len(logits))]
        active = list(range(len(logits)))  # the answers still decoding: the rows of the batch's tensors
        for step in range(max_new_tokens):
            chosen = draw(logits)
            going = []
            for i, answer in enumerate(active):
                tokens[answer].append(int(chosen[i]))
                if tokens[answer][-1] not in stops and not (settled and settled(self.tokenizer.decode(tokens[answer]))):
                    going.append(i)
            if not going or step + 1 == max_new_tokens:
                break
            if len(going) < len(active):  # ended answers leave the batch, cache included
                keep = torch.tensor(going)
                cache.batch_select_indices(keep.to(self.device))
                mask, position, chosen = mask[keep], position[keep], chosen[keep]
                draw = draw.rows(going)
                active = [active[i] for i in going]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype)], dim=1)
            position = position + 1
            with torch.inference_mode():
                out = self.model(input_ids=chosen[:, None].to(self.device), attention_mask=mask.to(self.device),
                                 position_ids=position[:, None].to(self.device), use_cache=True, logits_to_keep=1,
                                 **{self._cache_kwarg: cache})
            cache = getattr(out, "cache", None) or out.past_key_values
            logits = out.logits[:, -1].float().cpu()
        answers = []
        for row in tokens:
            kept = row[:-1] if row and row[-1] in stops else row
            answers.append(Generated(self.tokenizer.decode(kept, skip_special_tokens=True), len(row)))
        return [answers[start:start + samples] for start in range(0, len(answers), samples)]

    def _stop_ids(self) -> set[int]:
        """Token ids that end an answer: the model's EOS ids and the chat templates' end-of-turn tokens."""
        eos = self.model.generation_config.eos_token_id
        stops = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        vocab = self.tokenizer.get_vocab()
        stops.update(vocab[t] for t in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>") if t in vocab)
        if self.tokenizer.eos_token_id is not None:
            stops.add(self.tokenizer.eos_token_id)
        return stops

    def sequence_logprobs(self, prompts: Sequence[str], sequences: Sequence[Sequence[int]], *,
                          shared_prefix: str = "", adapters: Sequence[str | None] | None = None) -> np.ndarray:
        ids, prefix = self._split(prompts, shared_prefix)
        longest = max(len(s) for s in sequences)
        rows = [p + list(s) for p in ids for s in sequences]
        row_adapters = None if adapters is None else [a for a in adapters for _ in sequences]
        logprobs = self._forward(rows, prefix, keep=longest + 1, adapters=row_adapters).numpy()
        out = np.empty((len(ids), len(sequences)))
        for r, (i, j) in enumerate((i, j) for i in range(len(ids)) for j in range(len(sequences))):
            seq = sequences[j]
            # Row r ends with seq; the logits predicting seq[t] sit len(seq) - t + 1 places from the end.
            positions = [longest + 1 - (len(seq) + 1) + t for t in range(len(seq))]
            out[i, j] = float(sum(logprobs[r, pos, tok] for pos, tok in zip(positions, seq)))
        return out

    def _split(self, prompts: Sequence[str], shared_prefix: str) -> tuple[list[list[int]], tuple[int, ...]]:
        """Token ids of each prompt past the shared prefix, and the prefix ids.

        The prefix is tokenized alone and its last token dropped, since a token may merge across the
        prefix/text boundary; prompts are always tokenized whole, so results never depend on the split.
        """
        full = [self.encode_prompt(p) for p in prompts]
        prefix: tuple[int, ...] = ()
        if shared_prefix:
            candidate = tuple(self.encode(shared_prefix))[:-1]
            if candidate and all(tuple(ids[: len(candidate)]) == candidate and len(ids) > len(candidate)
                                 for ids in full):
                prefix = candidate
        return [ids[len(prefix):] for ids in full], prefix

    def _prefix_kv(self, prefix: tuple[int, ...], adapter: str | None):
        """The KV cache of ``prefix`` under ``adapter`` (None: the base model), computed once."""
        import torch

        # The prefix's keys and values depend on the weights, so each adapter has its own entry.
        key = (adapter, prefix)
        if key not in self._prefix_cache:
            if len(self._prefix_cache) >= 8:
                self._prefix_cache.pop(next(iter(self._prefix_cache)))
            active = self.active_adapter
            if adapter != active:
                self.set_adapter(adapter)
            try:
                positions = torch.arange(len(prefix))[None]
                with torch.inference_mode(), self._kernels(positions, positions):
                    out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True,
                                     logits_to_keep=1)
            finally:
                if adapter != active:
                    self.set_adapter(active)
            self._prefix_cache[key] = getattr(out, "cache", None) or out.past_key_values
        return self._prefix_cache[key]

    def _rows_prefix_kv(self, prefix: tuple[int, ...], adapters: Sequence[str | None] | None, n: int):
        """A fresh KV cache of ``prefix`` for ``n`` rows: each row's from its adapter's cached entry."""
        if adapters is None:
            adapters = [self.active_adapter] * n
        distinct = list(dict.fromkeys(adapters))
        caches = [self._prefix_kv(prefix, adapter) for adapter in distinct]
        cache = copy.deepcopy(caches[0])
        if len(distinct) == 1:
            if n > 1:
                cache.batch_repeat_interleave(n)
            return cache
        import torch

        which = torch.tensor([distinct.index(a) for a in adapters])
        for i, layer in enumerate(cache.layers):
            layer.keys = torch.cat([c.layers[i].keys for c in caches]).index_select(0, which.to(layer.keys.device))
            layer.values = torch.cat([c.layers[i].values for c in caches]).index_select(0, which.to(layer.keys.device))
        return cache

    def _adapter_rows(self, adapters: Sequence[str | None] | None, n: int) -> dict:
        """The forward pass's keyword selecting each row's adapter (PEFT's mixed-adapter batches)."""
        from confidently.errors import ArtifactError

        if adapters is None:
            return {}
        if len(adapters) != n:
            raise ValueError(f"{len(adapters)} adapter names for {n} rows")
        unknown = sorted({a for a in adapters if a is not None and a not in self.adapters})
        if unknown:
            raise ArtifactError(f"no adapter named {unknown[0]!r} is loaded "
                                f"(loaded: {', '.join(self.adapters) or 'none'})")
        if not self.adapters:
            return {}
        return {"adapter_names": [BASE_ROWS if a is None else a for a in adapters]}

    @contextlib.contextmanager
    def _adapter_layers_on(self, rows: dict):
        """Adapter layers enabled for a mixed batch (the bare base model disables them), restored after."""
        if not rows or self.active_adapter is not None:
            yield
            return
        self.model.base_model.enable_adapter_layers()
        try:
            yield
        finally:
            self.model.base_model.disable_adapter_layers()

    def clear_prefix_cache(self) -> None:
        """Forget cached prefixes (after changing weights in place, e.g. training)."""
        self._prefix_cache.clear()

    def _kernels(self, query_positions, key_positions):
        """The batch-invariant kernels for one forward pass, or nothing in the ordinary modes."""
        if not self.batch_invariant:
            return contextlib.nullcontext()
        from confidently.backends import invariant

        # On the model's device, so the attention's tiling is built and indexed there.
        return invariant.scoring_mode(invariant.TokenLayout(query_positions.to(self.device),
                                                            key_positions.to(self.device)))

    def _forward(self, rows: list[list[int]], prefix: tuple[int, ...], keep: int,
                 adapters: Sequence[str | None] | None = None):
        """Log-softmax of the last ``keep`` positions' logits, shape (n_rows, keep, vocab), float32 on CPU.

        ``adapters``: each row's adapter (None: the base model); default: the active adapter for all.
        """
        return self._pass(rows, prefix, keep, adapters)[0]

    def _pass(self, rows: list[list[int]], prefix: tuple[int, ...], keep: int,
              adapters: Sequence[str | None] | None = None, *, keep_cache: bool = False):
        """One forward pass over the left-padded ``rows`` after the cached ``prefix``: the log-softmax of the
        last ``keep`` positions' logits, shape (n_rows, keep, vocab), float32 on CPU; with ``keep_cache``
        also the KV cache, the attention mask and each row's last position, to decode further from.
        """
        import torch

        width = max(len(r) for r in rows)
        n = len(rows)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        suffix_mask = torch.zeros((n, width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            suffix_mask[i, width - len(row):] = 1
        # Positions count real tokens only, so left padding leaves every example's positions
        # exactly what they would be unpadded.
        position_ids = (len(prefix) + suffix_mask.cumsum(dim=1) - 1).clamp(min=0)
        adapter_rows = self._adapter_rows(adapters, n)
        cache = None
        attention_mask = suffix_mask
        if prefix:
            cache = self._rows_prefix_kv(prefix, adapters, n)
            attention_mask = torch.cat([torch.ones((n, len(prefix)), dtype=torch.long), suffix_mask], dim=1)
        query_positions = position_ids.masked_fill(suffix_mask == 0, -1)
        key_positions = torch.cat([torch.arange(len(prefix)).expand(n, -1), query_positions], dim=1)
        with torch.inference_mode(), self._kernels(query_positions, key_positions), \
                self._adapter_layers_on(adapter_rows):
            out = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                position_ids=position_ids.to(self.device),
                use_cache=keep_cache or cache is not None,
                logits_to_keep=keep,
                **{self._cache_kwarg: cache},
                **adapter_rows,
            )
            logits = out.logits[:, -keep:].float()
            if self.batch_invariant:
                from confidently.backends import invariant

                logprobs = invariant.rowwise(lambda rows: torch.log_softmax(rows, dim=-1), logits).cpu()
            else:
                logprobs = torch.log_softmax(logits, dim=-1).cpu()
        if not keep_cache:
            return logprobs, None
        return logprobs, (getattr(out, "cache", None) or out.past_key_values, attention_mask, position_ids[:, -1])


class _SeededSampler:
    """Picks each row's next token: the most likely at temperature 0; above it, a draw from
    ``softmax(logits / T)`` by inverse-CDF sampling with one uniform per row and step from the row's
    own seeded generator (an exact draw), so a row's tokens depend on its seed and its own logits alone."""

    def __init__(self, temperature: float, seeds: Sequence[int]):
        import torch

        self.temperature = temperature
        self.generators = [torch.Generator().manual_seed(s) for s in seeds] if temperature > 0 else []

    def rows(self, kept: Sequence[int]) -> _SeededSampler:
        """This sampler for the rows ``kept`` only, each row's generator continuing where it was."""
        sampler = _SeededSampler(self.temperature, [])
        sampler.generators = [self.generators[i] for i in kept] if self.generators else []
        return sampler

    def __call__(self, logits):
        import torch

        if self.temperature == 0:
            return logits.argmax(dim=1)
        cumulative = torch.softmax(logits.double() / self.temperature, dim=1).cumsum(dim=1)
        uniform = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in self.generators])
        # The first token whose cumulative probability exceeds the draw (never one of probability 0).
        chosen = torch.searchsorted(cumulative, (uniform * cumulative[:, -1])[:, None], right=True)[:, 0]
        return chosen.clamp(max=logits.shape[1] - 1)
