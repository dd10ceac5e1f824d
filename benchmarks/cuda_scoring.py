"""Scoring on a CUDA GPU: does a text's score depend on its batch, and what does invariance cost?

The offline models cannot travel to a lent GPU machine (the smallest is 98 MB), so this runs the
real default model's architecture (Qwen2.5-0.5B: 24 layers, hidden 896, 14 heads / 2 KV heads,
MLP 4864, vocabulary 151,936) with random weights and the test suite's small BPE tokenizer. The
shapes, and so the kernels, FLOPs and batch effects, are the real model's; the scores are not.

Prints, per precision (float32, plain bfloat16, batch-invariant bfloat16 and float32):

- batch dependence: the largest change of any next-token log-prob (whole vocabulary) and of any class
  probability between a text scored alone and the same text inside batches of random neighbours
  (sizes 2-64), with and without the cached prompt prefix;
- throughput (texts/s, batch 16 and 64) and single-text latency (p50 over texts scored alone);
- per Linear shape: whether a row alone gets the same result as inside M rows, plain and through
  the invariant kernels.

Usage: python benchmarks/cuda_scoring.py [--device cuda] [--layers 24] [--n 256] [--json OUT.json]
(``--device cpu --layers 1 --vocab 1000 --n 32 --probes 2`` is a quick dry run on a machine without a GPU.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
QWEN_05B = {"hidden_size": 896, "intermediate_size": 4864, "num_attention_heads": 14, "num_key_value_heads": 2,
            "vocab_size": 151936, "max_position_embeddings": 4096}
# mode -> (dtype, batch_invariant)
MODES = {"float32": ("float32", None), "bfloat16": ("bfloat16", None), "bf16-invariant": ("bf16-invariant", None),
         "fp32-invariant": ("float32", True)}


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def linear_batch_dependence(device: str) -> list[dict]:
    """For each of the model's Linear shapes: does a row's result change with the rows beside it?"""
    from confidently.backends import invariant

    hidden, mlp, kv = QWEN_05B["hidden_size"], QWEN_05B["intermediate_size"], 128
    shapes = {"q/o": (hidden, hidden), "k/v": (kv, hidden), "gate/up": (mlp, hidden), "down": (hidden, mlp),
              "lm head": (QWEN_05B["vocab_size"], hidden)}
    rows = []
    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        for name, (out_features, in_features) in shapes.items():
            weight = torch.randn(out_features, in_features, generator=generator).to(device, dtype) * 0.05
            x = torch.randn(4096, in_features, generator=generator).to(device, dtype)
            row = {"dtype": str(dtype).removeprefix("torch."), "linear": name, "shape": [out_features, in_features]}
            for kernel, linear in (("plain", torch.nn.functional.linear), ("invariant", invariant.tiled_linear)):
                alone = linear(x[:1], weight)
                row[kernel] = {m: float((linear(x[:m], weight)[:1] - alone).abs().max())
                               for m in (3, 64, 256, 1024, 4096)}
            rows.append(row)
    return rows


def class_probs(classifier, logprobs: np.ndarray) -> np.ndarray:
    mass = classifier.verbalizer.class_mass(logprobs)
    return mass / mass.sum(axis=1, keepdims=True)


def batch_dependence(backend, classifier, texts: list[str], n_probes: int, seed: int = 0) -> dict:
    """Largest change between each of ``n_probes`` texts alone and inside random batches, prefix cached or not."""
    rng = np.random.default_rng(seed)
    prompts = [classifier.prompt(t) for t in texts]
    probes = list(range(n_probes))
    alone = {cached: np.concatenate([backend.next_token_logprobs([prompts[i]],
                                                                 shared_prefix=classifier.prefix if cached else "")
                                     for i in probes])
             for cached in (True, False)}
    worst = {"logprob": 0.0, "class prob": 0.0, "cached vs uncached logprob": float(np.abs(alone[True] - alone[False]).max())}
    for size in (2, 7, 16, 33, 64):
        for cached in (True, False):
            for i in probes:
                others = rng.choice(len(prompts), size=size - 1, replace=True)
                position = int(rng.integers(0, size))
                batch = [prompts[j] for j in others]
                batch.insert(position, prompts[i])
                got = backend.next_token_logprobs(batch, shared_prefix=classifier.prefix if cached else "")[position]
                reference = alone[cached][i]
                worst["logprob"] = max(worst["logprob"], float(np.abs(got - reference).max()))
                worst["class prob"] = max(worst["class prob"], float(np.abs(
                    class_probs(classifier, got[None]) - class_probs(classifier, reference[None])).max()))
    return worst


def throughput(classifier, texts: list[str], batch_size: int, device: str) -> float:
    classifier.batch_size = batch_size
    classifier.score(texts[:batch_size])  # warm-up: kernels, prefix cache, probes
    synchronize(device)
    start = time.perf_counter()
    classifier.score(texts)
    synchronize(device)
    return len(texts) / (time.perf_counter() - start)


def latency_ms(classifier, texts: list[str], device: str) -> float:
    classifier.batch_size = 1
    times = []
    for text in texts[:16]:
        synchronize(device)
        start = time.perf_counter()
        classifier.score([text])
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=QWEN_05B["vocab_size"], help="vocabulary size of the model")
    parser.add_argument("--probes", type=int, default=16, help="texts whose batch dependence is measured")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import build_tiny_model

    from confidently.backends.transformers_backend import TransformersBackend
    from confidently.scoring.classifier import Classifier
    from confidently.data import generate_sentiment

    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
              f"TF32 matmul allowed: {torch.backends.cuda.matmul.allow_tf32}")
    texts = list(generate_sentiment(n=max(args.n, 100), seed=0).texts[:args.n])
    results: dict = {"device": args.device, "layers": args.layers, "texts": len(texts),
                     "linears": linear_batch_dependence(args.device), "modes": {}}
    print("Linear shapes: largest change of row 0 alone vs inside M rows (0 = batch-invariant)")
    for row in results["linears"]:
        print(f"  {row['dtype']:9} {row['linear']:8} {row['shape']}: plain {row['plain']}, invariant {row['invariant']}")
    print(flush=True)
    with tempfile.TemporaryDirectory() as folder:
        build_tiny_model(Path(folder), seed=0, num_hidden_layers=args.layers, **{**QWEN_05B, "vocab_size": args.vocab})
        for mode in args.modes:
            dtype, batch_invariant = MODES[mode]
            backend = TransformersBackend(folder, device=args.device, dtype=dtype, batch_invariant=batch_invariant)
            classifier = Classifier(backend=backend)
            tokens = np.mean([backend.count_tokens(classifier.prompt(t)) for t in texts[:64]])
            row = {"tokens per prompt": round(float(tokens), 1),
                   "batch dependence": batch_dependence(backend, classifier, texts, args.probes),
                   "texts/s batch 16": throughput(classifier, texts, 16, args.device),
                   "texts/s batch 64": throughput(classifier, texts, 64, args.device),
                   "single text p50 ms": latency_ms(classifier, texts, args.device)}
            if args.device.startswith("cuda"):
                row["peak GPU memory GiB"] = torch.cuda.max_memory_allocated() / 2**30
                torch.cuda.reset_peak_memory_stats()
            results["modes"][mode] = row
            print(mode, json.dumps(row), flush=True)
            del backend, classifier
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()

    print(f"\n{'mode':16} {'max |Δ logprob|':>16} {'max |Δ p(class)|':>17} {'texts/s b16':>12} {'texts/s b64':>12} "
          f"{'1 text p50':>11}")
    for mode, row in results["modes"].items():
        dependence = row["batch dependence"]
        print(f"{mode:16} {dependence['logprob']:16.2e} {dependence['class prob']:17.2e} "
              f"{row['texts/s batch 16']:12.1f} {row['texts/s batch 64']:12.1f} {row['single text p50 ms']:9.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
