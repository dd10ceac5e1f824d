"""Scoring throughput side by side: float32, plain bfloat16, batch-invariant bfloat16 and llama.cpp.

For each model, one worker process per engine loads the model, then all engines score the same
texts (the same prompts, the shared prompt prefix computed once and reused) in interleaved rounds:
every round each engine scores the same chunk of texts in turn, the order rotating between rounds,
so a change in the machine's load hits every engine alike. Prints texts/s, the ratios to float32 and
to llama.cpp, P(positive) agreement with float32, one text's latency (p50 over texts scored alone),
peak RSS per engine and the FLOP limit of each precision at the measured matmul speed.

Engines:

- ``float32``, ``bfloat16``, ``bf16-invariant``: the transformers backend (``Classifier.score``, batch
  size ``--batch-size``, prefix KV reused);
- ``float32 generate()`` and ``float32 no prefix KV`` (run by the float32 worker): the original
  write-up's method, one ``generate(max_new_tokens=1, output_scores=True)`` per text, and batched
  forward passes without the shared prefix's KV reuse, to show what each step of the method gains;
- ``llama.cpp``: llama-cpp-python on the same GGUF the transformers weights were de-quantized from,
  the prefix evaluated once and each text's suffix evaluated after it (``n_tokens`` reset to the
  prefix), one text at a time (its multi-sequence batches are slower, see the models note). Its
  SIMD features are printed: a portable build (AVX2) is slower than one compiled for this CPU
  (``CMAKE_ARGS=-DGGML_NATIVE=ON``); ``--llama-cpp-path DIR`` imports llama_cpp from DIR (a
  ``pip install --target DIR`` of another build).

Only ratios measured inside one run mean anything on a shared machine: the load average is printed
at the start and the end.

Usage: python benchmarks/scoring.py [--models qwen2.5-coder-0.5b-instruct gemma-3-270m] [--n 256]
       [--batch-size 16] [--threads N] [--engines float32 bfloat16 bf16-invariant llama.cpp]
       [--rounds 4] [--latency-texts 16] [--llama-cpp-path DIR] [--skip-methods] [--data FILE.jsonl]
Without --data it scores ../shared/datasets/sst2_dev.jsonl when present, else generated sentences.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

SST2 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2_dev.jsonl"
TRANSFORMERS_ENGINES = ("float32", "bfloat16", "bf16-invariant")
ENGINES = (*TRANSFORMERS_ENGINES, "llama.cpp")
# Other methods of the float32 worker: row name -> method.
FLOAT32_METHODS = {"float32 generate()": "generate", "float32 no prefix KV": "no-prefix"}
PRECISION_OF = {"float32": "float32", "bfloat16": "bfloat16", "bf16-invariant": "bfloat16",
                **dict.fromkeys(FLOAT32_METHODS, "float32")}


def load_texts(path: Path | None, n: int) -> list[str]:
    if path is None and SST2.exists():
        path = SST2
    if path is not None:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line)["text"] for line in handle][:n]
    from confidently.data import generate_sentiment

    return list(generate_sentiment(n=max(n, 100), seed=0).texts[:n])


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def cpu_seconds() -> float:
    """CPU time of this process (all its threads): with one thread, about the time an idle machine takes."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def matmul_gflops(dtype: str, seconds: float = 1.5) -> float:
    """FLOP rate of a 1024 x 1024 x 1024 matmul in ``dtype`` (the ceiling the models' Linears meet)."""
    import torch

    a = torch.randn(1024, 1024).to(getattr(torch, dtype))
    b = torch.randn(1024, 1024).to(getattr(torch, dtype))
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * 1024 ** 3 * count / (time.perf_counter() - start) / 1e9


# -- engines (run inside the worker processes) ------------------------------------------------------
class TransformersEngine:
    def __init__(self, model: str, dtype: str, batch_size: int, texts: list[str]):
        from confidently.scoring.classifier import Classifier

        self.clf = Classifier(model=model, dtype=dtype, batch_size=batch_size)
        self.texts = texts

    def describe(self) -> dict:
        """Prompts as token ids, label token ids and FLOP counts, for llama.cpp and the FLOP limit."""
        backend, clf = self.clf.backend, self.clf
        model = backend.model
        embedding = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        tied = head.data_ptr() == embedding.data_ptr()
        full = [backend.encode_prompt(clf.prompt(t)) for t in self.texts]
        prefix = backend.encode(clf.prefix)[:-1]  # as the backend splits it: the last token may merge
        return {
            "prompt_ids": full, "prefix_ids": prefix, "labels": list(clf.labels),
            "label_ids": [list(map(int, label.token_ids)) for label in clf.verbalizer.labels],
            # Every non-shared token passes every weight but the embedding table (a lookup); the LM
            # head runs once per text (logits_to_keep=1). Forward: 2 FLOPs per weight per token.
            "per_token_weights": sum(p.numel() for p in model.parameters()) - embedding.numel()
            - (0 if tied else head.numel()),
            "head_weights": head.numel(),
            "suffix_tokens": sum(len(ids) - len(prefix) for ids in full),
            "prompt_tokens": sum(len(ids) for ids in full),
            "gguf": str(Path(backend.source.path) / backend.source.gguf_file) if backend.source.gguf_file else None,
        }

    def score(self, indices: list[int], method: str = "prefix") -> np.ndarray:
        """P(positive) of the texts: ``prefix`` (Classifier.score), ``no-prefix`` or ``generate``."""
        texts = [self.texts[i] for i in indices]
        if method == "prefix":
            return self.clf.score(texts).probs[:, -1]
        mass = self._generate(texts) if method == "generate" else self._batched_without_prefix(texts)
        return mass[:, -1] / mass.sum(axis=1)

    def _generate(self, texts: list[str]) -> np.ndarray:
        """One generate() per text, reading the first step's scores (what the original write-up did)."""
        import torch

        backend, masses = self.clf.backend, []
        for text in texts:
            ids = torch.tensor([backend.encode_prompt(self.clf.prompt(text))])
            with torch.inference_mode():
                out = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=1,
                                             do_sample=False, output_scores=True, return_dict_in_generate=True,
                                             pad_token_id=backend.pad_id)
            masses.append(self.clf.verbalizer.class_mass(torch.log_softmax(out.scores[0].float(), dim=-1).numpy())[0])
        return np.array(masses)

    def _batched_without_prefix(self, texts: list[str]) -> np.ndarray:
        prompts = [self.clf.prompt(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(prompts[i]))
        mass = np.zeros((len(texts), len(self.clf.labels)))
        for start in range(0, len(order), self.clf.batch_size):
            idx = order[start:start + self.clf.batch_size]
            mass[idx] = self.clf.backend.score_prompts([prompts[i] for i in idx], self.clf.verbalizer)[0]
        return mass

    def build(self) -> str:
        import torch

        return f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"


class LlamaCppEngine:
    def __init__(self, gguf: str, threads: int, description: dict):
        from llama_cpp import Llama

        self.prompts = description["prompt_ids"]
        self.prefix = description["prefix_ids"]
        self.label_ids = description["label_ids"]
        longest = max(len(p) for p in self.prompts)
        self.llm = Llama(model_path=gguf, n_ctx=max(512, longest + 8), n_batch=512, n_threads=threads,
                         n_threads_batch=threads, logits_all=False, verbose=False)
        self.llm.eval(self.prefix)

    def build(self) -> str:
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode()
        features = [part.split("=")[0].split(":")[-1].strip() for part in info.split("|")
                    if part.strip().endswith("= 1")]
        return f"llama-cpp-python {llama_cpp.__version__}, {' '.join(features)}"

    def score(self, indices: list[int], method: str = "prefix") -> np.ndarray:
        import llama_cpp

        out = []
        for i in indices:
            self.llm.n_tokens = len(self.prefix)  # keep the prefix's KV, drop the last text's
            self.llm.eval(self.prompts[i][len(self.prefix):])
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm.ctx, -1),
                                           shape=(self.llm.n_vocab(),)).astype(np.float64)
            logprobs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
            mass = [np.exp(logprobs[ids]).sum() for ids in self.label_ids]
            out.append(mass[-1] / sum(mass))
        return np.array(out)


def worker(connection, engine: str, model: str, batch_size: int, threads: int, texts: list[str],
           llama_cpp_path: str | None) -> None:
    """One engine in its own process: answers the parent's commands until ``finish``."""
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    if engine == "llama.cpp":
        if llama_cpp_path:
            sys.path.insert(0, llama_cpp_path)
        gguf, description = connection.recv()
        scorer = LlamaCppEngine(gguf, threads, description)
    else:
        scorer = TransformersEngine(model, engine, batch_size, texts)
    scorer.score([0, 1], "prefix")  # warm-up: allocations, the prefix cache, the invariant kernels' probes
    connection.send({"load_s": time.perf_counter() - start, "rss_gib": peak_rss_gib(), "build": scorer.build()})
    while True:
        command, argument = connection.recv()
        if command == "describe":
            connection.send(scorer.describe())
        elif command == "score":
            method, indices = argument
            start, cpu_start = time.perf_counter(), cpu_seconds()
            p = scorer.score(indices, method)
            connection.send((time.perf_counter() - start, cpu_seconds() - cpu_start, p))
        elif command == "finish":
            connection.send(peak_rss_gib())
            return


# -- the run ------------------------------------------------------------------------------------
def run_model(model: str, texts: list[str], args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    workers = {}
    for engine in sorted(args.engines, key=lambda e: e != "float32"):
        parent_end, child_end = context.Pipe()
        process = context.Process(target=worker, args=(child_end, engine, model, args.batch_size, args.threads, texts,
                                                       args.llama_cpp_path))
        process.start()
        workers[engine] = (parent_end, process)
        if engine == "float32":  # the reference: load it first, it describes the prompts for llama.cpp
            loaded = {engine: parent_end.recv()}
            parent_end.send(("describe", None))
            description = parent_end.recv()
    if "llama.cpp" in workers:
        workers["llama.cpp"][0].send((description["gguf"], description))
    for engine, (connection, _) in workers.items():
        if engine not in loaded:
            loaded[engine] = connection.recv()

    # Each row of the table: (worker, method).
    rows = {engine: (engine, "prefix") for engine in workers}
    if "float32" in workers and not args.skip_methods:
        rows.update({row: ("float32", method) for row, method in FLOAT32_METHODS.items()})
    seconds = dict.fromkeys(rows, 0.0)
    cpu = dict.fromkeys(rows, 0.0)
    p_positive = {row: np.zeros(len(texts)) for row in rows}
    chunks = np.array_split(np.arange(len(texts)), args.rounds)
    order = list(rows)
    for round_index, chunk in enumerate(chunks):
        for row in order[round_index % len(order):] + order[:round_index % len(order)]:
            engine, method = rows[row]
            workers[engine][0].send(("score", (method, chunk.tolist())))
            spent, spent_cpu, p = workers[engine][0].recv()
            seconds[row] += spent
            cpu[row] += spent_cpu
            p_positive[row][chunk] = p
    latency = {row: [] for row in rows}
    latency_cpu = {row: [] for row in rows}
    for i in range(min(args.latency_texts, len(texts))):
        for row in order[i % len(order):] + order[:i % len(order)]:
            engine, method = rows[row]
            workers[engine][0].send(("score", (method, [i])))
            spent, spent_cpu, _ = workers[engine][0].recv()
            latency[row].append(spent)
            latency_cpu[row].append(spent_cpu)
    peak = {}
    for engine, (connection, process) in workers.items():
        connection.send(("finish", None))
        peak[engine] = connection.recv()
        process.join()
    loaded = {row: loaded[engine] for row, (engine, _) in rows.items()}
    peak = {row: peak[engine] for row, (engine, _) in rows.items()}

    report(model, texts, args, loaded, seconds, cpu, p_positive, latency, latency_cpu, peak, description)


def report(model, texts, args, loaded, seconds, cpu, p_positive, latency, latency_cpu, peak, description) -> None:
    n = len(texts)
    rate = {engine: n / s for engine, s in seconds.items()}
    rate_cpu = {engine: n / s for engine, s in cpu.items()}
    print(f"\n== {model}: {n} texts, {args.threads} threads, batch size {args.batch_size} "
          f"(llama.cpp: one text at a time), {args.rounds} interleaved rounds; "
          f"mean {description['suffix_tokens'] / n:.1f} non-shared tokens/text after a "
          f"{len(description['prefix_ids'])}-token cached prefix")
    print("wall: texts/s and one text's p50 latency; cpu: the same per CPU-second of the engine's process "
          "(with 1 thread, about what an idle machine would take)")
    for engine in ("float32", "llama.cpp"):
        if engine in loaded:
            print(f"{engine}: {loaded[engine]['build']}")
    print(f"{'engine':20s} {'texts/s':>8s} {'vs fp32':>8s} {'vs llama':>9s} {'cpu: texts/s':>13s} {'vs fp32':>8s} "
          f"{'vs llama':>9s} {'1 text p50':>11s} {'cpu p50':>8s} {'load s':>7s} {'peak RSS':>9s} "
          f"{'|dP| mean/max vs fp32':>22s}")
    for engine in rate:
        diff = np.abs(p_positive[engine] - p_positive["float32"])
        print(f"{engine:20s} {rate[engine]:8.2f} {ratio(rate, engine, 'float32'):>8s} "
              f"{ratio(rate, engine, 'llama.cpp'):>9s} {rate_cpu[engine]:13.2f} "
              f"{ratio(rate_cpu, engine, 'float32'):>8s} {ratio(rate_cpu, engine, 'llama.cpp'):>9s} "
              f"{np.median(latency[engine]) * 1000:8.0f} ms {np.median(latency_cpu[engine]) * 1000:5.0f} ms "
              f"{loaded[engine]['load_s']:7.1f} {peak[engine]:7.2f} GiB {diff.mean():10.4f} / {diff.max():.4f}")
    per_text = 2 * (description["per_token_weights"] * description["suffix_tokens"] / n
                    + description["head_weights"])
    precisions = sorted({PRECISION_OF[e] for e in rate if e in PRECISION_OF})
    gflops = {precision: matmul_gflops(precision) for precision in precisions}
    for precision, speed in gflops.items():
        limit = speed * 1e9 / per_text
        reached = ", ".join(f"{e} {rate[e] / limit:.0%}" for e in rate
                            if PRECISION_OF.get(e) == precision and e not in FLOAT32_METHODS)
        print(f"FLOP limit {precision}: {per_text / 1e9:.2f} GFLOP/text ({description['per_token_weights'] / 1e6:.0f}M "
              f"weights x {description['suffix_tokens'] / n:.1f} tokens + {description['head_weights'] / 1e6:.0f}M "
              f"LM head) at {speed:.0f} GFLOP/s (1024^3 matmul now) -> {limit:.1f} texts/s; reached: {reached}")
    if "float32 generate()" in rate:
        # generate() runs every prompt token, the shared prefix included.
        whole = 2 * (description["per_token_weights"] * description["prompt_tokens"] / n + description["head_weights"])
        speed = whole * rate["float32 generate()"] / 1e9
        print(f"float32 generate() computes {description['prompt_tokens'] / n:.1f} tokens/text at {speed:.0f} GFLOP/s, "
              f"{speed / gflops['float32']:.0%} of the float32 matmul speed")


def ratio(rates: dict, engine: str, reference: str) -> str:
    return f"{rates[engine] / rates[reference]:.2f}x" if reference in rates else "-"


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b-instruct", "gemma-3-270m"])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--latency-texts", type=int, default=16)
    parser.add_argument("--llama-cpp-path", default=None, help="import llama_cpp from this folder")
    parser.add_argument("--skip-methods", action="store_true",
                        help="leave out float32's generate() and no-prefix-KV rows")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    if "float32" not in args.engines:
        parser.error("float32 is the reference engine: keep it in --engines")
    torch.set_num_threads(args.threads)
    texts = load_texts(args.data, args.n)
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    for model in args.models:
        run_model(model, texts, args)
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
