"""The batch-invariant bfloat16 mode: a text's scores do not depend on what shares its batch.

The property test draws random batch compositions (neighbours, batch sizes, padding, prefix cache
on or off) on a tiny random model and requires every text's class probabilities to equal the ones
it gets alone. The model is the conftest one made wider (hidden 64, MLP 512): at the default width
plain bfloat16 is batch-invariant by luck, so the test could not fail; at this width plain bfloat16
moves log-probs by ~0.09 (checked by the sensitivity test). The kernels are also checked one by one
against plain references.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confidently.backends import invariant
from confidently.backends.transformers_backend import TransformersBackend, choose_batch_invariant
from confidently.scoring.classifier import Classifier
from confidently.errors import ConfigError

# Lengths from one token to past two key tiles (KEY_TILE = 64), so texts straddle query and key tiles.
POOL = ["yes", "I hate it", "the movie was great", "a wonderful film and I love it",
        "boring film, terrible and bad, I hate it so much",
        "the movie was great and I love it, a wonderful film " * 4,
        "terrible awful bad boring film, I hate it " * 9]


# Every test that runs a model runs on each device here (CUDA where present: the lent GPU machine).
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module", params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(scope="module")
def invariant_backend(wide_tiny_model_dir, device):
    return TransformersBackend(str(wide_tiny_model_dir), device=device, dtype="bf16-invariant")


@pytest.fixture(scope="module")
def alone(invariant_backend):
    """Each pool text scored on its own (prefix cached): the reference every batch must reproduce."""
    clf = Classifier(backend=invariant_backend, batch_size=1)
    return np.concatenate([clf.score([text]).probs for text in POOL])


def class_probs(clf, logprobs):
    mass = clf.verbalizer.class_mass(logprobs)
    return mass / mass.sum(axis=1, keepdims=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=64),
       batch_size=st.integers(1, 64), prefix_cache=st.booleans())
def test_scores_do_not_depend_on_the_batch(invariant_backend, alone, picks, batch_size, prefix_cache):
    clf = Classifier(backend=invariant_backend, batch_size=batch_size)
    texts = [POOL[i] for i in picks]
    if prefix_cache:
        probs = clf.score(texts).probs
    else:  # the whole prompt through the model, no cached prefix
        prompts = [clf.prompt(t) for t in texts]
        probs = np.concatenate([class_probs(clf, invariant_backend.next_token_logprobs(prompts[i:i + batch_size]))
                                for i in range(0, len(prompts), batch_size)])
    assert np.abs(probs - alone[picks]).max() <= 1e-6


def test_plain_bfloat16_on_the_same_model_depends_on_the_batch(wide_tiny_model_dir, device):
    """Sensitivity check: without the kernels the property test's model does fail it."""
    plain = TransformersBackend(str(wide_tiny_model_dir), device=device, dtype="bfloat16")
    clf = Classifier(backend=plain)
    prompts = [clf.prompt(t) for t in POOL]
    batched = plain.next_token_logprobs(prompts, shared_prefix=clf.prefix)
    alone = np.concatenate([plain.next_token_logprobs([p], shared_prefix=clf.prefix) for p in prompts])
    if np.array_equal(batched, alone):
        pytest.skip(f"plain bfloat16 on this {device} happens to be batch-invariant on this model")
    assert np.abs(batched - alone).max() > 1e-3


def test_log_probs_are_bit_identical_alone_and_in_a_batch(invariant_backend):
    clf = Classifier(backend=invariant_backend)
    prompts = [clf.prompt(t) for t in POOL]
    batched = invariant_backend.next_token_logprobs(prompts, shared_prefix=clf.prefix)
    for i, prompt in enumerate(prompts):
        assert np.array_equal(invariant_backend.next_token_logprobs([prompt])[0], batched[i])


def test_invariant_float32_agrees_with_the_ordinary_forward(wide_tiny_model_dir, device):
    # The kernels change only the order of reductions: in float32 they match transformers' own path.
    ordinary = TransformersBackend(str(wide_tiny_model_dir), device=device, dtype="float32")
    tiled = TransformersBackend(str(wide_tiny_model_dir), device=device, dtype="float32", batch_invariant=True)
    clf = Classifier(backend=ordinary)
    prompts = [clf.prompt(t) for t in POOL]
    expected = ordinary.next_token_logprobs(prompts, shared_prefix=clf.prefix)
    np.testing.assert_allclose(tiled.next_token_logprobs(prompts, shared_prefix=clf.prefix), expected, atol=1e-4)
    np.testing.assert_allclose(tiled.next_token_logprobs(prompts), expected, atol=1e-4)


def test_lora_adapters_stay_invariant(alone, wide_tiny_model_dir, device, tmp_path):
    from test_adapters import make_adapter

    backend = TransformersBackend(str(wide_tiny_model_dir), device=device, dtype="bf16-invariant")
    backend.load_adapter(make_adapter(wide_tiny_model_dir, tmp_path / "a", 1))
    clf = Classifier(backend=backend, batch_size=5)
    batched = clf.score(POOL).probs
    single = np.concatenate([clf.score([t]).probs for t in POOL])
    assert np.abs(batched - single).max() <= 1e-6
    assert np.abs(batched - alone).max() > 1e-4  # the adapter really changed the scores


def test_precision_is_part_of_the_fingerprint(invariant_backend, tiny_backend):
    assert invariant_backend.precision == "bfloat16-invariant" and invariant_backend.dtype == "bfloat16"
    assert ":bfloat16-invariant:" in invariant_backend.fingerprint()
    assert tiny_backend.precision == "float32" and ":float32:" in tiny_backend.fingerprint()
    assert Classifier(backend=invariant_backend).fingerprint() != Classifier(backend=tiny_backend).fingerprint()


def test_invariant_mode_runs_on_cpu_and_cuda():
    with pytest.raises(ConfigError, match="CPU and CUDA, not on mps"):
        choose_batch_invariant(None, "bf16-invariant", "mps")
    assert choose_batch_invariant(True, "bfloat16", "cuda:0") and choose_batch_invariant(None, "bf16-invariant", "cuda")
    assert choose_batch_invariant(None, "bfloat16-invariant", "cpu") and not choose_batch_invariant(None, "bf16", "cpu")


# -- the kernels one by one -----------------------------------------------------------------------
@pytest.mark.parametrize("on", DEVICES)
@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(1, 80), row=st.integers(0, 79), seed=st.integers(0, 2**16))
def test_tiled_linear_gives_a_row_the_same_result_in_any_batch(on, n_rows, row, seed):
    # A long reduction (2048): plain F.linear gives a row alone and in >= 3 rows different results here.
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(96, 2048, generator=generator).bfloat16().to(on)
    bias = torch.randn(96, generator=generator).bfloat16().to(on)
    x = torch.randn(n_rows, 2048, generator=generator).bfloat16().to(on)
    row = row % n_rows
    alone = invariant.tiled_linear(x[row:row + 1], weight, bias)[0]
    assert torch.equal(invariant.tiled_linear(x, weight, bias)[row], alone)


@pytest.mark.parametrize("on", DEVICES)
def test_per_tile_calls_match_the_fused_call(on, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 128, generator=generator).bfloat16().to(on)
    x = torch.randn(3, 37, 128, generator=generator).bfloat16().to(on)
    fused = invariant.tiled_linear(x, weight)
    monkeypatch.setattr(invariant, "_fused_is_tile_exact", lambda *args: False)  # as after a failed probe
    per_tile = invariant.tiled_linear(x, weight)
    assert torch.equal(fused, per_tile) and fused.shape == (3, 37, 64)
    np.testing.assert_allclose(fused.float().cpu(), F.linear(x.float(), weight.float()).cpu(), rtol=0.02, atol=0.3)


@pytest.mark.parametrize("on", DEVICES)
@settings(max_examples=20, deadline=None)
@given(n_rows=st.integers(1, 600), row=st.integers(0, 599), seed=st.integers(0, 2**16))
def test_rowwise_reductions_give_a_row_the_same_result_in_any_batch(on, n_rows, row, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_rows, 896, generator=generator).to(on)
    row = row % n_rows
    norm = lambda rows: rows * torch.rsqrt(rows.pow(2).mean(-1, keepdim=True) + 1e-6)  # noqa: E731 (an RMSNorm)
    assert torch.equal(invariant.rowwise(norm, x)[row], invariant.rowwise(norm, x[row:row + 1])[0])
    np.testing.assert_allclose(invariant.rowwise(norm, x).cpu(), norm(x).cpu(), rtol=1e-5, atol=1e-6)


def reference_attention(query, key, value, query_positions, key_positions, scaling, sliding_window, softcap):
    """Float64 softmax attention over each query's allowed keys, one query at a time."""
    batch, heads, n_queries, dim = query.shape
    groups = heads // key.shape[1]
    out = torch.zeros(batch, n_queries, heads, value.shape[-1], dtype=torch.float64)
    for b in range(batch):
        for i in range(n_queries):
            at = int(query_positions[b, i])
            if at < 0:
                continue
            keys = [j for j in range(key.shape[2]) if 0 <= key_positions[b, j] <= at
                    and (sliding_window is None or at - key_positions[b, j] < sliding_window)]
            for h in range(heads):
                k = key[b, h // groups, keys].double()
                s = (k @ query[b, h, i].double()) * scaling
                if softcap is not None:
                    s = torch.tanh(s / softcap) * softcap
                out[b, i, h] = torch.softmax(s, 0) @ value[b, h // groups, keys].double()
    return out


@pytest.mark.parametrize("on", DEVICES)
@pytest.mark.parametrize(("sliding_window", "softcap"), [(None, None), (5, None), (None, 30.0)])
def test_attention_matches_a_plain_softmax(sliding_window, softcap, on):
    generator = torch.Generator().manual_seed(1)
    # Two texts after a 3-token cached prefix: suffix lengths 70 and 2, left-padded to 70.
    lengths, prefix, width = (70, 2), 3, 70
    query_positions = torch.full((2, width), -1)
    for b, n in enumerate(lengths):
        query_positions[b, width - n:] = torch.arange(prefix, prefix + n)
    key_positions = torch.cat([torch.arange(prefix).expand(2, -1), query_positions], dim=1)
    query = torch.randn(2, 4, width, 8, generator=generator)
    key = torch.randn(2, 2, prefix + width, 8, generator=generator)
    value = torch.randn(2, 2, prefix + width, 8, generator=generator)
    module = torch.nn.Module()
    module.is_causal = True
    with invariant.scoring_mode(invariant.TokenLayout(query_positions.to(on), key_positions.to(on))):
        out, weights = invariant.invariant_attention(module, query.to(on), key.to(on), value.to(on), None,
                                                     scaling=0.3, sliding_window=sliding_window, softcap=softcap)
    out = out.cpu()
    expected = reference_attention(query, key, value, query_positions, key_positions, 0.3, sliding_window, softcap)
    assert weights is None and out.shape == (2, width, 4, 8)
    np.testing.assert_allclose(out.double(), expected, atol=1e-5)


def test_rotary_table_matches_the_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rotary = model.model.rotary_emb
    x = torch.zeros(1, dtype=torch.float32)
    positions = torch.tensor([[0, 5, 300, 17], [1, 2, 3, 599]])
    cos, sin = rotary(x, positions)
    invariant.tabulate_rotary(model)
    table_cos, table_sin = rotary(x, positions)
    np.testing.assert_allclose(table_cos, cos, atol=1e-6)
    np.testing.assert_allclose(table_sin, sin, atol=1e-6)
    assert torch.equal(rotary(x, positions[:1, 2:3])[0][0, 0], table_cos[0, 2])  # a position alone: same values


# -- the real model ---------------------------------------------------------------------------------
REAL_TEXTS = ["I absolutely loved this film, it was wonderful from start to finish.",
              "A boring, predictable mess that wasted two hours of my life.",
              "the plot is thin but the performances are charming .",
              "An okay product.", "Fantastic!", "It arrived broken and customer support never answered."]


@pytest.mark.model
def test_gemma_scores_are_identical_alone_batched_and_uncached():
    clf = Classifier(model="gemma-3-270m", dtype="bf16-invariant", batch_size=4)
    alone = np.concatenate([clf.score([t]).probs for t in REAL_TEXTS])
    batched = clf.score(REAL_TEXTS[::-1]).probs[::-1]  # other neighbours, other padding
    uncached = class_probs(clf, clf.backend.next_token_logprobs([clf.prompt(t) for t in REAL_TEXTS]))
    assert np.abs(batched - alone).max() <= 1e-6 and np.abs(uncached - alone).max() <= 1e-6
    # Still the model's answer: bfloat16 weights move P(positive) by ~0.01 on average from float32.
    reference = Classifier(model="gemma-3-270m", dtype="float32").score(REAL_TEXTS).probs
    assert np.abs(alone - reference).max() < 0.08
    assert (alone.argmax(1) == reference.argmax(1)).mean() >= 5 / 6


def test_bfloat16_loads_its_own_verified_copy_of_the_dequantized_weights(tiny_gguf, tmp_path, monkeypatch):
    import json

    from transformers import AutoModelForCausalLM

    from confidently.models.registry import dequantized_dir, resolve_model

    monkeypatch.setenv("CONFIDENTLY_CACHE", str(tmp_path))
    backend = TransformersBackend(str(tiny_gguf), device="cpu", dtype="bf16-invariant")
    float32_dir = dequantized_dir(resolve_model(str(tiny_gguf)))
    narrow_dir = float32_dir.with_name(float32_dir.name + "-bfloat16")
    manifest = json.loads((narrow_dir / "confidently-dequantized.json").read_text())
    assert manifest["dtype"] == "bfloat16" and manifest["files"]
    # The same bfloat16 weights as converting the float32 copy while loading it.
    converted = AutoModelForCausalLM.from_pretrained(float32_dir, dtype=torch.bfloat16).state_dict()
    loaded = backend.model.state_dict()
    assert all(torch.equal(tensor, loaded[name]) for name, tensor in converted.items())
    assert all(tensor.dtype == torch.bfloat16 for tensor in loaded.values())
