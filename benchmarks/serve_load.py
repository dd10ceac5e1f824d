"""Serving under load: latency and throughput of ``confidently serve`` next to offline batch scoring.

Scores the same generated sentiment texts three ways with one model:

1. offline, ``Classifier.score`` with the server's batch size (the throughput ceiling), before and
   after the server levels;
2. single-text requests from 1, 8 and 32 concurrent clients (closed loop: each client sends its
   next request when the last one is answered);
3. 64-text requests from one client;
4. with ``--adapters N`` (default 4): single-text requests from 32 clients spread over N LoRA
   adapters of the model (text i always goes to adapter i mod N), which the server scores in
   mixed-adapter batches, against offline ``Classifier.score`` of the same texts with each
   adapter's texts batched alone; the scores of the two are compared. The adapters are fresh
   LoRA adapters (the fine-tuning stage's targets and rank, random weights), written as bundles
   into a temporary folder: they cost what trained ones cost, their answers mean nothing.
   The mixed forward pass is also timed offline with and without the shared prompt prefix's
   cached keys and values.

The server runs in a subprocess on 127.0.0.1 (never another host) and the clients are asyncio tasks
in this process. Each level is bounded by a request count and a time limit. Prints p50/p99 latency,
texts/s and the ratio to offline throughput, plus the server's mean batch size.

Usage: python benchmarks/serve_load.py [--model qwen2.5-coder-0.5b-instruct] [--batch-size 16]
       [--dtype float32] [--batch-wait-ms 5] [--requests-per-client 4] [--level-timeout 120] [--adapters 4]

Other processes on the machine slow this down; the load average is printed at the start and end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from confidently.scoring.classifier import Classifier
from confidently.data import generate_sentiment
from confidently.models.registry import DEFAULT_MODEL

BULK = 64  # texts per request in the bulk level
MIXED_CLIENTS = 32


def offline_throughput(classifier: Classifier, texts: list[str]) -> tuple[float, np.ndarray]:
    """Texts/s of ``Classifier.score`` on ``texts``, and the raw probabilities, one row per text."""
    start = time.perf_counter()
    probs = classifier.score(texts).probs
    return len(texts) / (time.perf_counter() - start), probs


def write_random_adapters(classifier: Classifier, folder: Path, count: int) -> list[str]:
    """``count`` LoRA adapters for the classifier's model, saved as bundles in ``folder``; their names.

    Each is a fresh adapter of the fine-tuning stage (its targets and rank) with random ``lora_B``
    weights, so it changes the scores (a fresh one's ``lora_B`` is zero); no calibrator, no threshold.
    """
    import torch

    from confidently.bundle.bundle import ModelIdentity
    from confidently.finetune.artifacts import peft_config_dict, write_adapter
    from confidently.finetune.config import FinetuneConfig
    from confidently.finetune.model import (
        TRAINING_ADAPTER,
        trainable_state,
        training_adapter,
    )
    from confidently.decision.policy import DecisionPolicy

    backend = classifier.backend
    names = [f"adapter{i}" for i in range(count)]
    base = ModelIdentity(backend.model_name, backend.name, backend.weights_id, backend.dtype, None)
    policy = DecisionPolicy(threshold=None, target_accuracy=None, certified=False, method="random benchmark adapter")
    for seed, name in enumerate(names):
        with training_adapter(backend, FinetuneConfig(model=backend.model_name), seed) as model, torch.no_grad():
            for parameter_name, parameter in model.named_parameters():
                if "lora_B" in parameter_name:
                    parameter.normal_(0.0, 0.02)
            weights = trainable_state(model)
            adapter_config = peft_config_dict(model.peft_config[TRAINING_ADAPTER], backend.model_name)
        write_adapter(folder / name, weights=weights, adapter_config=adapter_config, model=base, task=classifier.task,
                      chat=classifier.chat, calibrator=None, policy=policy,
                      fitted_on={"rows_sha256": "0" * 64, "n_rows": 0}, metadata={})
    return names


def offline_adapter_scores(classifier: Classifier, texts: list[str], names: list[str]) -> tuple[float, np.ndarray]:
    """Texts/s of ``Classifier.score`` over ``texts`` with text i on adapter i mod len(names) (each adapter's
    texts batched alone), and the raw probabilities, one row per text."""
    probs = np.zeros((len(texts), len(classifier.labels)))
    start = time.perf_counter()
    for k, name in enumerate(names):
        classifier.backend.set_adapter(name)
        probs[k::len(names)] = classifier.score(texts[k::len(names)]).probs
    seconds = time.perf_counter() - start
    classifier.backend.set_adapter(None)
    return len(texts) / seconds, probs


def mixed_forward_throughput(classifier: Classifier, texts: list[str], names: list[str], *, prefix: bool) -> float:
    """Texts/s of the backend's mixed-adapter forward pass (text i on adapter i mod len(names)), in
    batches of the classifier's batch size in pool order (not sorted by length, as a server's arrive),
    with or without the cached prompt prefix."""
    prompts = classifier.prompts(texts)[0]
    adapters = [names[i % len(names)] for i in range(len(texts))]
    size = classifier.batch_size
    start = time.perf_counter()
    for i in range(0, len(prompts), size):
        classifier.backend.next_token_logprobs(prompts[i:i + size], shared_prefix=classifier.prefix if prefix else "",
                                               adapters=adapters[i:i + size])
    return len(prompts) / (time.perf_counter() - start)


def start_server(args: argparse.Namespace, adapters_dir: Path | None = None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "confidently.cli", "serve", "--model", args.model, "--host", "127.0.0.1",
               "--port", str(port), "--batch-size", str(args.batch_size), "--log-level", "warning",
               "--max-texts", str(BULK)]
    if args.dtype:
        command += ["--dtype", args.dtype]
    if args.batch_wait_ms is not None:
        command += ["--batch-wait-ms", str(args.batch_wait_ms)]
    if adapters_dir is not None:
        command += ["--adapters", str(adapters_dir)]
    return subprocess.Popen(command), f"http://127.0.0.1:{port}"


async def wait_ready(client, process: subprocess.Popen, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit("the server did not start in time")


async def run_level(client, texts: list[str], *, clients: int, per_request: int, requests: int,
                    timeout: float, adapters: list[str] | None = None) -> dict:
    """``clients`` closed-loop clients send ``requests`` requests in all (or until ``timeout`` s).

    With ``adapters``, text i goes to adapter i mod len(adapters). With single-text requests the
    result holds each answered text's raw probabilities by text index.
    """
    latencies: list[float] = []
    answers: dict[int, list[float]] = {}
    sent = 0
    deadline = time.monotonic() + timeout

    async def one_client() -> None:
        nonlocal sent
        while sent < requests and time.monotonic() < deadline:
            first = sent * per_request
            batch = [texts[(first + i) % len(texts)] for i in range(per_request)]
            body = {"texts": batch}
            if adapters:
                body["adapter"] = adapters[first % len(texts) % len(adapters)]
            sent += 1
            start = time.perf_counter()
            reply = await client.post("/v1/classify", json=body)
            reply.raise_for_status()
            latencies.append(time.perf_counter() - start)
            if per_request == 1:
                result = reply.json()
                answers[first % len(texts)] = [result["results"][0]["raw_probs"][label] for label in result["labels"]]

    start = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    wall = time.perf_counter() - start
    lat = np.array(latencies)
    return {"requests": len(lat), "p50_ms": 1000 * np.percentile(lat, 50), "p99_ms": 1000 * np.percentile(lat, 99),
            "texts_per_s": len(lat) * per_request / wall, "answers": answers}


def mean_batch_size(metrics_text: str) -> float:
    values = {line.split()[0]: float(line.split()[1]) for line in metrics_text.splitlines()
              if line.startswith("confidently_batch_size_texts_")}
    count = values.get("confidently_batch_size_texts_count", 0.0)
    return values.get("confidently_batch_size_texts_sum", 0.0) / count if count else 0.0


async def measure_server(args: argparse.Namespace, texts: list[str], adapters_dir: Path | None,
                         names: list[str]) -> tuple[list[tuple[str, dict]], float]:
    import httpx

    process, url = start_server(args, adapters_dir)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
            await wait_ready(client, process)
            await run_level(client, texts, clients=1, per_request=1, requests=3, timeout=60)  # warm-up
            rows = []
            for clients in (1, 8, 32):
                requests = max(args.requests_per_client * clients, 20)
                rows.append((f"{clients} client{'s' if clients > 1 else ''} x 1 text",
                             await run_level(client, texts, clients=clients, per_request=1, requests=requests,
                                             timeout=args.level_timeout)))
            rows.append((f"1 client x {BULK} texts",
                         await run_level(client, texts, clients=1, per_request=BULK, requests=args.bulk_requests,
                                         timeout=args.level_timeout)))
            if names:
                await run_level(client, texts, clients=len(names), per_request=1, requests=len(names), timeout=60,
                                adapters=names)  # warm-up: each adapter's prompt prefix
                rows.append((f"{MIXED_CLIENTS} clients x {len(names)} adapters",
                             await run_level(client, texts, clients=MIXED_CLIENTS, per_request=1,
                                             requests=max(args.requests_per_client * MIXED_CLIENTS, len(texts)),
                                             timeout=args.level_timeout, adapters=names)))
            batch = mean_batch_size((await client.get("/metrics")).text)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    return rows, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--batch-size", type=int, default=16, help="server batch size = offline batch size")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16 …")
    parser.add_argument("--batch-wait-ms", type=float, default=None, help="the server's batching window")
    parser.add_argument("--texts", type=int, default=128, help="distinct texts in the pool")
    parser.add_argument("--requests-per-client", type=int, default=4)
    parser.add_argument("--bulk-requests", type=int, default=4)
    parser.add_argument("--level-timeout", type=float, default=120, help="seconds per level at most")
    parser.add_argument("--adapters", type=int, default=4, help="LoRA adapters of the mixed level (0: no such level)")
    args = parser.parse_args()

    texts = list(generate_sentiment(args.texts, seed=0).texts)
    print(f"model {args.model}, batch size {args.batch_size}, dtype {args.dtype or 'default'}, "
          f"batch wait {'default' if args.batch_wait_ms is None else f'{args.batch_wait_ms:g} ms'}, "
          f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    classifier = Classifier(model=args.model, batch_size=args.batch_size, dtype=args.dtype)
    # Warm-up over the whole pool: the first pass over new shapes is several times slower (bf16-invariant
    # gemma-3-270m: 5.7 then 41 texts/s on 32 texts).
    classifier.score(texts)
    # Measured before and after the server levels (the server idle), since other load drifts meanwhile.
    before, base_probs = offline_throughput(classifier, texts)
    print(f"offline Classifier.score, batch {args.batch_size}: {before:.2f} texts/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="serve-load-adapters-") as folder:
        adapters_dir = Path(folder) if args.adapters else None
        names = write_random_adapters(classifier, adapters_dir, args.adapters) if adapters_dir else []
        for name in names:
            classifier.backend.load_adapter(adapters_dir / name, name, activate=False)
        if names:
            offline_adapter_scores(classifier, texts, names)  # warm-up: each adapter's prompt prefix
            mixed_before, offline_probs = offline_adapter_scores(classifier, texts, names)
            print(f"offline Classifier.score, each of {len(names)} adapters' texts batched alone: "
                  f"{mixed_before:.2f} texts/s", flush=True)
            for prefix in (True, False):
                rate = mixed_forward_throughput(classifier, texts, names, prefix=prefix)
                print(f"offline mixed-adapter forward passes in pool order, {'with' if prefix else 'without'} the cached prompt "
                      f"prefix (per-adapter keys and values): {rate:.2f} texts/s", flush=True)
        rows, batch = asyncio.run(measure_server(args, texts, adapters_dir, names))
    classifier.backend.set_adapter(None)
    after, _ = offline_throughput(classifier, texts)
    offline = (before + after) / 2
    print(f"offline again after the server levels: {after:.2f} texts/s; ratios below use the mean {offline:.2f}")
    if names:
        mixed_after, _ = offline_adapter_scores(classifier, texts, names)
        mixed_offline = (mixed_before + mixed_after) / 2
        print(f"offline with adapters again: {mixed_after:.2f} texts/s; the adapters level's ratio uses the mean "
              f"{mixed_offline:.2f}")
    print(f"\n{'level':<24}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'texts/s':>9}{'x offline':>11}")
    for name, row in rows:
        reference = mixed_offline if name.endswith("adapters") else offline
        print(f"{name:<24}{row['requests']:>9}{row['p50_ms']:>9.0f}{row['p99_ms']:>9.0f}"
              f"{row['texts_per_s']:>9.2f}{row['texts_per_s'] / reference:>11.2f}")
    # float32 scores move a little with what shares a batch (its padding width and size), mixed or not;
    # the base model's level shows how much, next to the mixed level's.
    print()
    for name, row in rows:
        answers, reference = row["answers"], offline_probs if name.endswith("adapters") else base_probs
        if name.startswith(f"{MIXED_CLIENTS} clients") and answers:
            index = sorted(answers)
            gap = np.abs(np.array([answers[i] for i in index]) - reference[index]).max()
            print(f"{name}: largest raw-probability difference to offline batches {gap:.2e} over {len(index)} texts"
                  f"{' (bit-identical)' if gap == 0 else ''}")
    print(f"\nmean server batch size {batch:.1f} texts; load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
