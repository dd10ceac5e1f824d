"""LoRA training throughput: examples/s and the projected time of one epoch over 8,000 examples.

For each model, trains the default adapter (``FinetuneConfig`` defaults unless overridden) on
generated sentiment rows for ``--steps`` optimizer steps through the real training loop
(:class:`confidently.finetune.trainer.Trainer`: shared prompt prefix, answer-only LM head, length
buckets) and times the steps after ``--warmup`` (the final step, which also runs the validation
pass, is left out). Prints examples/s, seconds per step, and minutes per epoch of ``--epoch-size``.

Usage: python benchmarks/finetune.py [--models gemma-3-270m qwen2.5-coder-0.5b-instruct] [--steps 100]
       [--batch-size 8] [--grad-accum 2] [--threads N] [--no-shared-prefix]

Other processes on the machine slow this down; note the load average printed at the start and end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import time

import numpy as np
import torch

from confidently.backends.transformers_backend import TransformersBackend
from confidently.scoring.classifier import Classifier
from confidently.data import generate_sentiment, split_dataset
from confidently.finetune import FinetuneConfig
from confidently.finetune.data import EncodedSet, answer_targets, encode_examples
from confidently.finetune.model import training_adapter
from confidently.finetune.trainer import Trainer


def unshared(encoded: EncodedSet) -> EncodedSet:
    """The same rows with the prefix folded into every row (what training without KV reuse runs)."""
    return dataclasses.replace(encoded, prefix=(), rows=tuple(encoded.prefix + row for row in encoded.rows))


def measure(model: str, args: argparse.Namespace) -> dict:
    config = FinetuneConfig(model=model, batch_size=args.batch_size, grad_accum=args.grad_accum,
                            max_steps=args.steps, eval_every=args.steps, patience=0)
    started = time.perf_counter()
    backend = TransformersBackend(model, dtype="float32")
    load_seconds = time.perf_counter() - started
    classifier = Classifier(task=config.task, backend=backend)
    splits = split_dataset(generate_sentiment(args.rows, seed=0), fractions=(0.9, 0.0, 0.1), seed=0)
    validation = splits.test.subset(range(min(32, len(splits.test))))
    targets = answer_targets(classifier, splits.train.texts)
    train_set = encode_examples(classifier, splits.train, targets)
    validation_set = encode_examples(classifier, validation, targets)
    if args.no_shared_prefix:
        train_set, validation_set = unshared(train_set), unshared(validation_set)
    stamps: list[float] = []
    with training_adapter(backend, config, config.seed) as peft_model:
        trainer = Trainer(peft_model, train_set, validation_set, config, verbalizers=[classifier.verbalizer],
                          pad_id=backend.pad_id, cache_kwarg=backend._cache_kwarg, checkpoint=None,
                          identity={}, show_progress=False)
        stamps.append(time.perf_counter())
        result = trainer.run(on_step=lambda step: stamps.append(time.perf_counter()))
    # stamps[i] is the end of step i; step N also ran the validation pass, so it is left out.
    timed = np.diff(stamps[args.warmup:-1])
    per_step = float(np.mean(timed))
    examples_per_second = config.batch_size * config.grad_accum / per_step
    lengths = train_set.lengths
    return {
        "model": model,
        "threads": torch.get_num_threads(),
        "load_seconds": round(load_seconds, 1),
        "steps_timed": int(timed.size),
        "examples_per_step": config.batch_size * config.grad_accum,
        "seconds_per_step": round(per_step, 3),
        "seconds_per_step_p10_p90": [round(float(np.percentile(timed, q)), 3) for q in (10, 90)],
        "examples_per_second": round(examples_per_second, 2),
        "minutes_per_epoch": round(args.epoch_size / examples_per_second / 60, 1),
        "epoch_size": args.epoch_size,
        "shared_prefix_tokens": len(train_set.prefix),
        "tokens_per_row_mean": round(float(lengths.mean()), 1),
        "final_validation": result.validation,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["gemma-3-270m", "qwen2.5-coder-0.5b-instruct"])
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per model (measured run)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    parser.add_argument("--batch-size", type=int, default=FinetuneConfig.batch_size)
    parser.add_argument("--grad-accum", type=int, default=FinetuneConfig.grad_accum)
    parser.add_argument("--rows", type=int, default=4000, help="generated rows to draw batches from")
    parser.add_argument("--epoch-size", type=int, default=8000, help="examples in the projected epoch")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-shared-prefix", action="store_true",
                        help="fold the shared prompt prefix into every row (to measure what reusing it saves)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.steps <= args.warmup + 1:
        parser.error("--steps must exceed --warmup + 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()}")
    results = []
    for model in args.models:
        result = measure(model, args)
        results.append(result)
        print(json.dumps(result, indent=2))
        print(f"{model}: {result['examples_per_second']:.2f} examples/s, {result['seconds_per_step']:.2f} s/step "
              f"({result['examples_per_step']} examples), one epoch of {args.epoch_size:,} examples = "
              f"{result['minutes_per_epoch']:.1f} min", flush=True)
    print(f"load average at end: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
