"""Batch-invariant kernels for CPU and CUDA: a text's scores do not depend on which texts share its batch.

A bfloat16 matmul on CPU can give a row a different result depending on how many rows share the
call (the kernel changes with the shape: here a row computed alone differed from the same row in a
call of three or more rows), and attention over left-padded keys reduces a row's keys in an order
that moves with the padding. Every operation a token meets is therefore made independent of the
batch:

- :func:`tiled_linear`: every Linear (LoRA layers included) runs on rows padded to a multiple of
  ``ROW_TILE`` and is computed as fixed-size tiles of ``ROW_TILE`` rows, so each row always meets
  the same kernel. One call over all tiles is used only for weight shapes where a probe on this
  machine found it bit-identical to one call per tile (on CPU it was for every weight measured;
  position inside a tile and the other rows never changed a row's result); otherwise each tile gets
  its own call. bfloat16 weights on CPU are pre-packed once for oneDNN. On CUDA see ``CUDA_ROW_CHUNK``.
- :func:`invariant_attention`: each text's keys are laid out at their absolute positions in tiles of
  ``KEY_TILE`` keys, queries in tiles of ``QUERY_TILE`` aligned to absolute positions, every tile
  product has one fixed shape, and the softmax sums run tile by tile in key order in float32. Padding
  never enters a text's reductions, and the prefix-cached and uncached runs meet the same tiles.
- :func:`tabulate_rotary`: rotary cos/sin for a position are computed once, in a fixed-size chunk of
  positions, and looked up, so a position's values never depend on the batch's shape.

Row-wise reductions (RMSNorm, the final log-softmax) and elementwise operations were measured
independent of the number of rows on CPU and are left to torch there; on CUDA the reductions run
through :func:`rowwise` in fixed chunks of rows. :func:`scoring_mode` turns the kernels on
for one forward pass; :func:`make_invariant` prepares a loaded model.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

ATTENTION_NAME = "confidently_invariant"
# Small tiles keep the padding of one text cheap: a 20-token text pays 20 rows, not 32, and the LM
# head (one row per text, the largest weight) 4 rows, not 16.
ROW_TILE = 4
QUERY_TILE = 16
KEY_TILE = 64
ROTARY_CHUNK = 256
# Each weight shape is probed once, on random rows, at these tile counts (8 to 96 rows): the one
# row-count dependence seen here was between calls of 1-2 rows and of 3 or more.
PROBE_TILE_COUNTS = (2, 3, 7, 24)
# On CUDA, cuBLAS and torch's reductions choose their kernels by the tensor's shape. With calls whose
# row count followed the batch, the tiled kernels still moved class probabilities by up to 0.07 with
# batch composition on an H200 (benchmarks/cuda_scoring.py); there the 896x4864 bfloat16 Linear gave
# a row the same result alone and among 64 rows, another among 256 or more. So every Linear and
# row-wise reduction runs on chunks of exactly CUDA_ROW_CHUNK rows, and the attention on chunks of
# exactly CUDA_PAIR_CHUNK (text, query tile) pairs: one shape per call, whatever the batch.
CUDA_ROW_CHUNK = 256
CUDA_PAIR_CHUNK = 64


@dataclass(frozen=True)
class TokenLayout:
    """Where each query and key of one forward pass sits in its text.

    Attributes
    ----------
    query_positions : (batch, queries) absolute position of each query token in its text; -1 marks padding.
    key_positions : (batch, keys) absolute position of each key in the layers' key tensors (cached
        prefix first); -1 marks padding. A text's keys must cover positions 0..n-1 exactly once.
    """

    query_positions: torch.Tensor
    key_positions: torch.Tensor
    _plans: dict = field(default_factory=dict, repr=False, compare=False)

    def plan(self, heads: int, kv_heads: int) -> _AttentionPlan:
        """The tiling every layer of this forward pass shares (built on the first layer)."""
        if (heads, kv_heads) not in self._plans:
            self._plans[heads, kv_heads] = _AttentionPlan(self.query_positions, self.key_positions, heads, kv_heads)
        return self._plans[heads, kv_heads]


_LAYOUT: contextvars.ContextVar[TokenLayout | None] = contextvars.ContextVar("confidently_token_layout",
                                                                                default=None)
_FUSED_IS_EXACT: dict[tuple, bool] = {}


# -- Linear -------------------------------------------------------------------------------------
def tiled_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear`` computed on fixed-size tiles of rows (the last tile zero-padded)."""
    rows = x.reshape(-1, x.shape[-1])
    product = _product(weight, bias)
    if rows.is_cuda:
        out = _in_chunks(product, rows, CUDA_ROW_CHUNK)
    elif _fused_is_tile_exact(weight, bias, product):
        out = product(_pad_rows(rows, ROW_TILE))[:rows.shape[0]]
    else:
        out = _in_chunks(product, rows, ROW_TILE)
    return out.reshape(*x.shape[:-1], weight.shape[0])


def _in_chunks(function: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, size: int) -> torch.Tensor:
    """``function`` applied to ``rows`` in calls of exactly ``size`` rows (the last zero-padded), trimmed back."""
    padded = _pad_rows(rows, size)
    out = torch.cat([function(padded[start:start + size]) for start in range(0, padded.shape[0], size)])
    return out[:rows.shape[0]]


def _pad_rows(rows: torch.Tensor, multiple: int, fill: float | bool = 0) -> torch.Tensor:
    """``rows`` padded with ``fill`` along its first dimension to a multiple of ``multiple``, contiguous."""
    padded = -(-rows.shape[0] // multiple) * multiple
    if padded == rows.shape[0] and rows.is_contiguous():
        return rows
    buffer = rows.new_full((padded, *rows.shape[1:]), fill)
    buffer[:rows.shape[0]] = rows
    return buffer


def _product(weight: torch.Tensor, bias: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``rows -> F.linear(rows, weight, bias)``; bfloat16 weights go through a oneDNN pre-packed copy.

    Packing once spares oneDNN re-packing the weight on every call, which dominates at the row
    counts of one text (qwen-0.5B's Linears at 24 rows: 1.6x faster; its LM head at 4 rows: 1.9x).
    The copy is kept on the weight itself and redone if the weight changes in place.
    """
    packable = weight.dtype == torch.bfloat16 and weight.device.type == "cpu"
    if not (packable and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return lambda rows: F.linear(rows, weight, bias)
    packed = getattr(weight, "_confidently_packed", None)
    if packed is None or packed[0] != weight._version:
        packed = (weight._version, torch.ops.mkldnn._reorder_linear_weight(weight.detach(), ROW_TILE))
        weight._confidently_packed = packed
    return lambda rows: torch.ops.mkldnn._linear_pointwise(rows, packed[1], bias, "none", [], "")


def _fused_is_tile_exact(weight: torch.Tensor, bias: torch.Tensor | None, product) -> bool:
    """Whether one call over many tiles gives every tile exactly its own call's result (probed once)."""
    key = (tuple(weight.shape), weight.dtype, bias is not None, torch.get_num_threads())
    if key not in _FUSED_IS_EXACT:
        _FUSED_IS_EXACT[key] = _probe_fused(weight.shape[1], weight.dtype, product)
    return _FUSED_IS_EXACT[key]


def _probe_fused(width: int, dtype: torch.dtype, product) -> bool:
    generator = torch.Generator().manual_seed(0)
    most = PROBE_TILE_COUNTS[-1] * ROW_TILE
    rows = torch.randn(most, width, generator=generator).to(dtype)
    with torch.inference_mode():
        tiles = torch.cat([product(rows[start:start + ROW_TILE]) for start in range(0, most, ROW_TILE)])
        return all(torch.equal(product(rows[:count * ROW_TILE]), tiles[:count * ROW_TILE])
                   for count in PROBE_TILE_COUNTS)


def rowwise(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``function`` (row by row over the last dimension) applied so that a row's result is batch-independent.

    On CPU torch's row-wise reductions were measured independent of the row count; on CUDA their
    launch configuration follows the tensor's shape, so rows go in fixed chunks of ``CUDA_ROW_CHUNK``.
    """
    if not x.is_cuda:
        return function(x)
    out = _in_chunks(function, x.reshape(-1, x.shape[-1]), CUDA_ROW_CHUNK)
    return out.reshape(*x.shape[:-1], out.shape[-1])


class _TiledLinearMode(TorchFunctionMode):
    """Routes every ``F.linear`` (nn.Linear, PEFT's LoRA layers, the LM head) to :func:`tiled_linear`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.linear:
            return tiled_linear(*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


# -- attention ------------------------------------------------------------------------------------
def invariant_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                        sliding_window: int | None = None, softcap: float | None = None, **kwargs):
    """A transformers attention function (``attn_implementation=ATTENTION_NAME``) in fixed tiles.

    ``query`` is (batch, heads, queries, dim), ``key``/``value`` (batch, kv_heads, keys, dim); which
    token each row is comes from the :class:`TokenLayout` of the enclosing :func:`scoring_mode`
    (transformers builds no mask for an attention it does not know, so ``attention_mask`` is None).
    Every product is one (query tile x key tile) block of fixed shape, in float32; the softmax sums
    run tile by tile in key order. Returns (batch, queries, heads, dim) in the query's dtype.
    """
    layout = _LAYOUT.get()
    if layout is None:
        raise RuntimeError("the batch-invariant attention runs only in the transformers backend's scoring "
                           "(invariant.scoring_mode); train or generate with dtype float32 or bfloat16")
    batch, heads, n_queries, _ = query.shape
    if key.shape[2] != layout.key_positions.shape[1] or n_queries != layout.query_positions.shape[1]:
        raise RuntimeError(f"the layer saw {key.shape[2]} keys and {n_queries} queries, the token layout "
                           f"{layout.key_positions.shape[1]} and {layout.query_positions.shape[1]} "
                           "(a sliding-window cache dropped keys?)")
    plan = layout.plan(heads, key.shape[1])
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    masks = plan.masks(getattr(module, "is_causal", True), sliding_window)
    q = plan.gather_queries(query)
    keys, values = plan.gather_keys(key), plan.gather_keys(value)

    if q.is_cuda:
        # Fixed-size chunks of (text, query tile) pairs, so every call has one shape (see CUDA_PAIR_CHUNK).
        chunk, n = CUDA_PAIR_CHUNK * plan.kv_heads, q.shape[0]
        q, keys, values = _pad_rows(q, chunk), _pad_dim1(keys, chunk), _pad_dim1(values, chunk)
        out = torch.cat([_attend(q[i:i + chunk], keys[:, i:i + chunk], values[:, i:i + chunk],
                                 [m[i:i + chunk] for m in masks], scale, softcap)
                         for i in range(0, q.shape[0], chunk)])[:n]
    else:
        out = _attend(q, keys, values, masks, scale, softcap)
    return plan.scatter(out, batch, n_queries, query.dtype), None


def _attend(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, masks: list[torch.Tensor], scale: float,
            softcap: float | None) -> torch.Tensor:
    """Softmax attention of tiled queries over key tiles, the sums running tile by tile in key order."""
    scores = []
    for tile, blocked in enumerate(masks):
        s = torch.bmm(q, keys[tile].transpose(1, 2)) * scale
        if softcap is not None:
            s = torch.tanh(s / softcap) * softcap
        scores.append(s.masked_fill_(blocked, float("-inf")))
    row_max = scores[0].amax(-1)
    for s in scores[1:]:
        row_max = torch.maximum(row_max, s.amax(-1))
    row_max.masked_fill_(torch.isinf(row_max), 0.0)  # empty slots attend nothing
    total = None
    weighted = None
    # Tile by tile in key order: a text's sums never depend on how many tiles its batch needed,
    # since the tiles past its own keys add exact zeros.
    for tile, s in enumerate(scores):
        p = torch.exp(s - row_max[..., None])
        part = torch.bmm(p, values[tile])
        total = p.sum(-1) if total is None else total + p.sum(-1)
        weighted = part if weighted is None else weighted + part
    return weighted / total.masked_fill_(total == 0, 1.0)[..., None]


def _pad_dim1(tiles: torch.Tensor, multiple: int) -> torch.Tensor:
    """(key_tiles, n, ...) zero-padded along n to a multiple of ``multiple``."""
    return torch.stack([_pad_rows(tile, multiple) for tile in tiles])


class _AttentionPlan:
    """How one forward pass's queries and keys are cut into fixed-size tiles.

    Queries go into tiles aligned to absolute positions (tile t holds positions t*QUERY_TILE...); a
    (text, tile) pair is one tile, with every query head that shares a key head stacked in it, so
    each product is (groups * QUERY_TILE) x dim times dim x KEY_TILE whatever the batch. Each pair
    gets its text's keys at their absolute positions, zero-padded to whole key tiles.
    """

    def __init__(self, query_positions: torch.Tensor, key_positions: torch.Tensor, heads: int, kv_heads: int):
        self.kv_heads = kv_heads
        self.groups = heads // kv_heads
        device = query_positions.device
        self.rows, self.columns = (query_positions >= 0).nonzero(as_tuple=True)
        at = query_positions[self.rows, self.columns]
        tiles_per_row = int(query_positions.max()) // QUERY_TILE + 1
        unique, self.pairs = torch.unique(self.rows * tiles_per_row + at // QUERY_TILE, return_inverse=True)
        self.pair_row = unique // tiles_per_row
        self.offsets = at % QUERY_TILE
        self.slot_positions = torch.full((len(unique), QUERY_TILE), -1, dtype=torch.long, device=device)
        self.slot_positions[self.pairs, self.offsets] = at

        batch, n_cols = key_positions.shape
        present = key_positions >= 0
        n_keys = key_positions.max(dim=1).values + 1
        if not torch.equal(present.sum(dim=1), n_keys.clamp(min=0)):
            raise RuntimeError("a text's keys must cover positions 0..n-1 exactly once")
        self.key_tiles = max(1, -(-int(n_keys.max()) // KEY_TILE))
        # n_cols points at the zero key appended in gather_keys
        index = torch.full((batch, self.key_tiles * KEY_TILE), n_cols, dtype=torch.long, device=device)
        key_rows, key_cols = present.nonzero(as_tuple=True)
        index[key_rows, key_positions[key_rows, key_cols]] = key_cols
        self.key_index = index[self.pair_row]
        self.pair_keys = n_keys[self.pair_row]
        self._masks: dict[tuple, list[torch.Tensor]] = {}

    def masks(self, causal: bool, sliding_window: int | None) -> list[torch.Tensor]:
        """Per key tile, True where a slot may not see a key: (pairs * kv_heads, groups * QUERY_TILE, KEY_TILE)."""
        key = (causal, sliding_window)
        if key not in self._masks:
            query_at = self.slot_positions[:, :, None]
            blocked = []
            for tile in range(self.key_tiles):
                key_at = torch.arange(tile * KEY_TILE, (tile + 1) * KEY_TILE, device=query_at.device)[None, None, :]
                allowed = (key_at < self.pair_keys[:, None, None]) & (query_at >= 0)
                if causal:
                    allowed &= key_at <= query_at
                if sliding_window is not None:
                    allowed &= query_at - key_at < sliding_window
                # (pairs, QUERY_TILE, KEY_TILE) -> (pairs * kv_heads, groups * QUERY_TILE, KEY_TILE)
                every_head = (~allowed)[:, None, None].expand(-1, self.kv_heads, self.groups, -1, -1)
                blocked.append(every_head.reshape(-1, self.groups * QUERY_TILE, KEY_TILE))
            if query_at.is_cuda:  # padded like invariant_attention's CUDA chunks; padding rows attend nothing
                blocked = [_pad_rows(b, CUDA_PAIR_CHUNK * self.kv_heads, fill=True) for b in blocked]
            self._masks[key] = blocked
        return self._masks[key]

    def gather_queries(self, query: torch.Tensor) -> torch.Tensor:
        """(batch, heads, queries, dim) -> (pairs * kv_heads, groups * QUERY_TILE, dim), float32."""
        heads, dim = query.shape[1], query.shape[3]
        slots = query.new_zeros((len(self.pair_row), QUERY_TILE, heads, dim), dtype=torch.float32)
        slots[self.pairs, self.offsets] = query[self.rows, :, self.columns].float()
        # head h uses key head h // groups (transformers' repeat_kv)
        grouped = slots.view(len(self.pair_row), QUERY_TILE, self.kv_heads, self.groups, dim).permute(0, 2, 3, 1, 4)
        return grouped.reshape(-1, self.groups * QUERY_TILE, dim)

    def gather_keys(self, states: torch.Tensor) -> torch.Tensor:
        """(batch, kv_heads, keys, dim) -> (key_tiles, pairs * kv_heads, KEY_TILE, dim), float32."""
        kv_heads, dim = states.shape[1], states.shape[3]
        padded = torch.cat([states, states.new_zeros((states.shape[0], kv_heads, 1, dim))], dim=2)
        at = padded[self.pair_row[:, None], :, self.key_index]  # (pairs, key_tiles * KEY_TILE, kv_heads, dim)
        at = at.view(len(self.pair_row), self.key_tiles, KEY_TILE, kv_heads, dim).permute(1, 0, 3, 2, 4)
        tiles = torch.empty(at.shape, dtype=torch.float32, device=at.device).copy_(at)
        return tiles.view(self.key_tiles, -1, KEY_TILE, dim)

    def scatter(self, out: torch.Tensor, batch: int, n_queries: int, dtype: torch.dtype) -> torch.Tensor:
        """(pairs * kv_heads, groups * QUERY_TILE, dim) -> (batch, queries, heads, dim) in ``dtype``."""
        dim = out.shape[-1]
        slots = out.view(len(self.pair_row), self.kv_heads, self.groups, QUERY_TILE, dim)
        result = out.new_zeros((batch, n_queries, self.kv_heads * self.groups, dim), dtype=dtype)
        result[self.rows, self.columns] = slots[self.pairs, :, :, self.offsets].flatten(1, 2).to(dtype)
        return result


# -- rotary embeddings -----------------------------------------------------------------------------
class _TabulatedRotary:
    """A rotary embedding's forward that looks up cos/sin computed in fixed chunks of positions."""

    def __init__(self, forward):
        self.forward = forward
        self.tables: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor, position_ids: torch.Tensor, *args):
        key = (x.dtype, x.device, *args)
        cos, sin = self.tables.get(key, (None, None))
        needed = int(position_ids.max()) + 1
        have = 0 if cos is None else cos.shape[0]
        if needed > have:
            chunks = [self.forward(x, torch.arange(start, start + ROTARY_CHUNK, device=x.device)[None], *args)
                      for start in range(have, needed, ROTARY_CHUNK)]
            new_cos = torch.cat([c[0] for c, _ in chunks])
            new_sin = torch.cat([s[0] for _, s in chunks])
            cos = new_cos if cos is None else torch.cat([cos, new_cos])
            sin = new_sin if sin is None else torch.cat([sin, new_sin])
            self.tables[key] = (cos, sin)
        return cos[position_ids], sin[position_ids]


def tabulate_rotary(model: torch.nn.Module) -> None:
    """Replace every rotary embedding's forward by a table lookup (see :class:`_TabulatedRotary`)."""
    for module in model.modules():
        if type(module).__name__.endswith("RotaryEmbedding") and not isinstance(module.forward, _TabulatedRotary):
            module.forward = _TabulatedRotary(module.forward)


# -- switching it on ---------------------------------------------------------------------------------
def register_attention() -> str:
    """Register :func:`invariant_attention` with transformers; returns its ``attn_implementation`` name."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, invariant_attention)
    return ATTENTION_NAME


def make_invariant(model: torch.nn.Module) -> None:
    """Prepare a loaded transformers model for :func:`scoring_mode`."""
    model.set_attn_implementation(register_attention())
    tabulate_rotary(model)
    for module in model.modules():
        if type(module).__name__.endswith("RMSNorm") and not isinstance(module.forward, _RowwiseForward):
            module.forward = _RowwiseForward(module.forward)


class _RowwiseForward:
    """A row-wise module's forward run through :func:`rowwise` (an RMSNorm's mean of squares is a reduction)."""

    def __init__(self, forward):
        self.forward = forward

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return rowwise(self.forward, x)


@contextlib.contextmanager
def scoring_mode(layout: TokenLayout) -> Iterator[None]:
    """Run the enclosed forward pass with the invariant kernels and ``layout``'s token positions."""
    token = _LAYOUT.set(layout)
    try:
        with _TiledLinearMode():
            yield
    finally:
        _LAYOUT.reset(token)
