"""Scoring throughput: the original write-up's method vs batched vs batched + shared-prefix KV reuse.

Scores the same sentences three ways in one process and prints examples/s, the ratios, agreement
between the methods, a FLOP-limit estimate and peak RSS:

  (a) one ``generate(max_new_tokens=1, output_scores=True)`` call per example (the original);
  (b) batched forward passes, last position's logits only;
  (c) (b) plus the prompt prefix's KV cache computed once and reused.

Usage: python benchmarks/scoring.py [--model NAME] [--n 256] [--batch-size 16] [--data FILE.jsonl]
Without --data it scores generated sentences (or ../shared/datasets/sst2_dev.jsonl when present).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from confidently.classifier import DEFAULT_BATCH_SIZE, Classifier

SST2 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2_dev.jsonl"


def load_texts(path: Path | None, n: int) -> list[str]:
    if path is None and SST2.exists():
        path = SST2
    if path is not None:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line)["text"] for line in handle][:n]
    from confidently.data import generate_sentiment

    return list(generate_sentiment(n=max(n, 100), seed=0).texts[:n])


def original_method(clf: Classifier, texts: list[str]) -> np.ndarray:
    """One generate() per example, reading the first step's scores (what the write-up did)."""
    backend = clf.backend
    masses = []
    for text in texts:
        ids = torch.tensor([backend.encode(clf.prompt(text))])
        with torch.inference_mode():
            out = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=1,
                                         do_sample=False, output_scores=True, return_dict_in_generate=True,
                                         pad_token_id=backend.pad_id)
        logprobs = torch.log_softmax(out.scores[0].float(), dim=-1).numpy()
        masses.append(clf.verbalizer.class_mass(logprobs)[0])
    return np.array(masses)


def batched(clf: Classifier, texts: list[str], shared_prefix: bool) -> np.ndarray:
    prompts = [clf.prompt(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -len(prompts[i]))
    mass = np.zeros((len(texts), len(clf.labels)))
    for start in range(0, len(order), clf.batch_size):
        idx = order[start:start + clf.batch_size]
        m, _, _ = clf.backend.score_prompts([prompts[i] for i in idx], clf.verbalizer,
                                            shared_prefix=clf.prefix if shared_prefix else "")
        mass[idx] = m
    return mass


def matmul_gflops(seconds: float = 2.0) -> float:
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * 1024 ** 3 * count / (time.perf_counter() - start) / 1e9


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()

    texts = load_texts(args.data, args.n)
    (clf, load_s) = timed(lambda: Classifier(model=args.model, dtype=args.dtype, batch_size=args.batch_size))
    backend = clf.backend
    print(f"model {args.model} ({backend.dtype}, {backend.device}, {torch.get_num_threads()} threads), "
          f"loaded in {load_s:.1f} s; {len(texts)} texts, batch size {args.batch_size}")
    batched(clf, texts[:2], True)  # warm-up: allocations, prefix cache

    mass_a, t_a = timed(lambda: original_method(clf, texts))
    mass_b, t_b = timed(lambda: batched(clf, texts, shared_prefix=False))
    backend.clear_prefix_cache()
    mass_c, t_c = timed(lambda: batched(clf, texts, shared_prefix=True))

    n = len(texts)
    rate = {"a": n / t_a, "b": n / t_b, "c": n / t_c}
    print(f"(a) original, generate() one at a time : {rate['a']:6.2f} ex/s")
    print(f"(b) batched, last position only        : {rate['b']:6.2f} ex/s  ({rate['b'] / rate['a']:.2f}x a)")
    print(f"(c) batched + shared-prefix KV reuse   : {rate['c']:6.2f} ex/s  ({rate['c'] / rate['a']:.2f}x a)")
    share = lambda m: m[:, -1] / m.sum(1)  # noqa: E731
    print(f"max |P(positive)| difference: b vs a {np.abs(share(mass_b) - share(mass_a)).max():.2e}, "
          f"c vs a {np.abs(share(mass_c) - share(mass_a)).max():.2e}")

    model = backend.model
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    tied = head.data_ptr() == embedding.data_ptr()
    # Every non-shared token passes through every weight but the embedding table (a lookup); the LM
    # head runs once per example (logits_to_keep=1). Forward ≈ 2 FLOPs per weight per token.
    per_token = sum(p.numel() for p in model.parameters()) - embedding.numel() - (0 if tied else head.numel())
    full_tokens = sum(len(backend.encode(clf.prompt(t))) for t in texts)
    suffix_tokens = full_tokens - n * (len(backend.encode(clf.prefix)) - 1)
    flops = 2 * (per_token * suffix_tokens + head.numel() * n)
    flops_a = 2 * (per_token * full_tokens + head.numel() * n)  # (a) runs every prompt token
    gflops = matmul_gflops()
    limit = n / (flops / (gflops * 1e9))
    print(f"FLOP limit: {per_token / 1e6:.0f}M per-token weights x {suffix_tokens / n:.1f} non-shared tokens/example "
          f"+ {head.numel() / 1e6:.0f}M LM head once; measured matmul {gflops:.1f} GFLOP/s -> at most {limit:.1f} ex/s; "
          f"(c) reaches {rate['c'] / limit:.0%}, and (c) at the limit would be {limit / rate['a']:.1f}x (a)")
    print(f"(a) computes {full_tokens / n:.1f} tokens/example at {flops_a / t_a / 1e9:.0f} GFLOP/s, "
          f"{flops_a / t_a / (gflops * 1e9):.0%} of the measured matmul speed")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
