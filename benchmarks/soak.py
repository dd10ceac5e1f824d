"""Soak: ``confidently serve`` under mixed load for a bounded time, on loopback only.

For ``--duration`` seconds (default 60), ``--clients`` closed-loop clients (default 50) send requests:

- one in ten sends big requests (``--big-texts`` texts with top tokens) to adapter ``soak-a``;
- one opens a connection, sends a big request and hangs up after ``--hang-up-s`` seconds, over and over;
- the others send one-text requests to the base model, ``soak-a`` or ``soak-b`` in turn;
- an admin loop unloads and reloads ``soak-b`` every ``--admin-every-s`` seconds (so some of the small
  requests for it get 404, which is expected and counted apart).

The two adapters are random LoRA adapters made for the model at start (``init_lora_weights=False``:
their scores mean nothing; they exist to be loaded, swapped and served). The server is a subprocess on
127.0.0.1 and the clients asyncio tasks in this process. Requests still unanswered ``--grace`` seconds
after the load ends are abandoned (the client hangs up) and counted. At the end: replies by status (the
5xx count must be 0), small- and big-request latency (p50/p99, n), texts scored per second, the
server's resident memory (start after warm-up, middle, end, peak; sampled every second from /proc, so
Linux only), whether any work was left queued, and the server's own shutdown summary after SIGTERM.

Usage: python benchmarks/soak.py [--model gemma-3-270m] [--clients 50] [--duration 60] [--batch-size 16]

Other processes on the machine slow this down; the load average is printed at the start and end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from confidently.bundle.bundle import ADAPTER_CONFIG_FILE, WEIGHTS_FILE, ModelIdentity, write_bundle
from confidently.data import generate_sentiment
from confidently.tasks.task import SENTIMENT
from confidently.decision.policy import DecisionPolicy

HOST = "127.0.0.1"  # loopback only, by design
TOKEN = "soak-admin-token"


def make_adapters(model: str, root: Path) -> None:
    """Random LoRA adapters ``soak-a`` and ``soak-b`` for ``model``, with the manifest the server checks."""
    import torch
    from peft import LoraConfig, get_peft_model

    from confidently.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(model, device="cpu", dtype="float32")
    for seed, name in enumerate(("soak-a", "soak-b")):
        torch.manual_seed(seed)
        peft_model = get_peft_model(backend.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                              init_lora_weights=False))
        folder = root / name
        peft_model.save_pretrained(folder)
        backend.model = peft_model.unload()  # back to the bare base model for the next one
        # An adapter folder is a calibration bundle (the server reads no other kind): no calibrator, and a
        # policy that reviews everything, since these random adapters' scores mean nothing.
        kept = lambda path: None  # noqa: E731  (PEFT has already written the file there)
        write_bundle(folder, model=ModelIdentity(model, "transformers", backend.weights_id, "float32"),
                     task=SENTIMENT, chat=None, calibrator=None,
                     policy=DecisionPolicy(None, None, False, "soak: random adapter, every answer reviewed"),
                     fitted_on={"rows_sha256": "0" * 64, "n_rows": 0},
                     extra_files={WEIGHTS_FILE: kept, ADAPTER_CONFIG_FILE: kept})


def start_server(args: argparse.Namespace, adapters: Path, log) -> tuple[subprocess.Popen, str]:
    """The server, its log (info: the shutdown summary) in the file ``log``; access lines are dropped."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "confidently.cli", "serve", "--model", args.model, "--host", HOST,
               "--port", str(port), "--adapters", str(adapters), "--batch-size", str(args.batch_size),
               "--log-level", "info", "--drain-timeout", str(args.drain_timeout)]
    env = {**os.environ, "CONFIDENTLY_ADMIN_TOKEN": TOKEN}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    return process, f"http://{HOST}:{port}"


async def wait_ready(client, process: subprocess.Popen, timeout: float = 900) -> None:
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


class Tally:
    """Replies by status, latencies by kind, and transport failures (which would be bugs too)."""

    def __init__(self) -> None:
        self.status: Counter[int] = Counter()
        self.latency: dict[str, list[float]] = {"small": [], "big": []}
        self.transport_errors: Counter[str] = Counter()
        self.hang_ups = 0
        self.abandoned: Counter[str] = Counter()
        self.admin: Counter[int] = Counter()


async def closed_loop(client, tally: Tally, kind: str, bodies, deadline: float) -> None:
    import httpx

    for body in bodies:
        if time.monotonic() >= deadline:
            return
        start = time.perf_counter()
        try:
            reply = await client.post("/v1/classify", json=body)
        except httpx.TransportError as error:
            tally.transport_errors[type(error).__name__] += 1
            continue
        except asyncio.CancelledError:  # still unanswered when the grace period ended
            tally.abandoned[kind] += 1
            raise
        tally.status[reply.status_code] += 1
        if reply.status_code == 200:
            tally.latency[kind].append(time.perf_counter() - start)


async def hang_up_loop(port: int, body: dict, tally: Tally, hang_up_s: float, deadline: float) -> None:
    """Send a big request on a raw connection, close it before the answer, repeat."""
    payload = json.dumps(body).encode()
    request = (f"POST /v1/classify HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    while time.monotonic() < deadline:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(request)
        await writer.drain()
        await asyncio.sleep(hang_up_s)
        writer.close()
        await writer.wait_closed()
        tally.hang_ups += 1


async def admin_loop(client, tally: Tally, every_s: float, deadline: float) -> None:
    """Unload ``soak-b``, load it again, and so on; it is left loaded."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    loaded = True
    while True:
        await asyncio.sleep(every_s)
        if time.monotonic() >= deadline and loaded:
            return
        reply = await (client.delete("/v1/adapters/soak-b", headers=headers) if loaded
                       else client.post("/v1/adapters/soak-b", headers=headers))
        tally.admin[reply.status_code] += 1
        loaded = not loaded


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (Linux: VmRSS in /proc)."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


async def sample_rss(pid: int, samples: list[tuple[float, int]], deadline: float) -> None:
    while time.monotonic() < deadline:
        samples.append((time.monotonic(), rss_bytes(pid)))
        await asyncio.sleep(1.0)


async def soak(args: argparse.Namespace, process: subprocess.Popen, url: str, texts: list[str]) -> dict:
    import httpx

    port = int(url.rsplit(":", 1)[1])
    n_big = max(1, args.clients // 10)
    n_small = args.clients - n_big - 1
    limits = httpx.Limits(max_connections=args.clients + 8, max_keepalive_connections=args.clients + 8)
    async with httpx.AsyncClient(base_url=url, timeout=args.request_timeout, limits=limits) as client:
        await wait_ready(client, process)
        for adapter in (None, "soak-a", "soak-b"):  # warm-up
            (await client.post("/v1/classify", json={"texts": texts[:4], "adapter": adapter})).raise_for_status()
        rss: list[tuple[float, int]] = []
        tally = Tally()
        scored_before = texts_scored((await client.get("/metrics")).text)
        start = time.monotonic()
        deadline = start + args.duration
        big_body = {"texts": texts[:args.big_texts], "adapter": "soak-a", "top_tokens": 5}
        adapters = itertools.cycle((None, "soak-a", "soak-b"))

        def small_bodies(offset: int):
            for i in itertools.count(offset):
                yield {"texts": [texts[i % len(texts)]], "adapter": next(adapters)}

        tasks = [closed_loop(client, tally, "small", small_bodies(i * 97), deadline) for i in range(n_small)]
        tasks += [closed_loop(client, tally, "big", itertools.repeat(big_body), deadline) for _ in range(n_big)]
        tasks += [hang_up_loop(port, big_body, tally, args.hang_up_s, deadline),
                  admin_loop(client, tally, args.admin_every_s, deadline)]
        running = [asyncio.ensure_future(task) for task in tasks]
        sampling = asyncio.ensure_future(sample_rss(process.pid, rss, deadline + args.grace))
        await asyncio.wait(running, timeout=args.duration + args.grace)
        for task in (*running, sampling):
            task.cancel()
        await asyncio.gather(*running, sampling, return_exceptions=True)
        wall = time.monotonic() - start
        rss.append((time.monotonic(), rss_bytes(process.pid)))
        scored = texts_scored((await client.get("/metrics")).text) - scored_before
        # Whatever hung-up or abandoned requests left must be gone: wait for the server to drop it.
        for _ in range(100):
            health = (await client.get("/healthz")).json()
            if not health["queued_texts"] and not health["in_flight"]:
                break
            await asyncio.sleep(0.1)
    return {"tally": tally, "rss": rss, "wall": wall, "n_small": n_small, "n_big": n_big, "health": health,
            "scored": scored}


def texts_scored(metrics: str) -> float:
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("confidently_texts_total{"))


def percentiles(values: list[float]) -> str:
    if not values:
        return "n 0"
    ms = 1000 * np.array(values)
    return f"n {len(ms)}, p50 {np.percentile(ms, 50):,.0f} ms, p99 {np.percentile(ms, 99):,.0f} ms, " \
           f"max {ms.max():,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (then requests in flight finish)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--big-texts", type=int, default=64, help="texts per big request (with top_tokens 5)")
    parser.add_argument("--hang-up-s", type=float, default=0.5, help="the disconnecting client's patience")
    parser.add_argument("--admin-every-s", type=float, default=5)
    parser.add_argument("--grace", type=float, default=60,
                        help="seconds after the load for requests in flight; then the clients hang up")
    parser.add_argument("--request-timeout", type=float, default=600)
    parser.add_argument("--drain-timeout", type=float, default=60)
    args = parser.parse_args()

    texts = list(generate_sentiment(256, seed=0).texts)
    print(f"model {args.model}, {args.clients} clients for {args.duration:g} s, batch size {args.batch_size}, "
          f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="soak-") as root:
        make_adapters(args.model, Path(root) / "adapters")
        with open(Path(root) / "server.log", "w+") as log:
            process, url = start_server(args, Path(root) / "adapters", log)
            try:
                result = asyncio.run(soak(args, process, url, texts))
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(args.drain_timeout + 60)
            log.seek(0)
            server_log = log.read()
    tally: Tally = result["tally"]
    server_errors = sum(n for status, n in tally.status.items() if status >= 500)
    replies = sum(tally.status.values())
    print(f"\n{result['n_small']} small clients (1 text), {result['n_big']} big clients ({args.big_texts} texts, "
          f"top_tokens 5), 1 hanging up after {args.hang_up_s:g} s, 1 admin; {args.duration:g} s of load, "
          f"{result['wall']:.0f} s in all (then {args.grace:g} s of grace for the requests in flight)")
    print(f"texts scored: {result['scored']:,.0f} ({result['scored'] / result['wall']:.2f}/s)")
    print(f"replies: {replies} ({', '.join(f'{s}: {n}' for s, n in sorted(tally.status.items()))}); "
          f"5xx: {server_errors}; transport errors: {dict(tally.transport_errors) or 0}")
    print(f"small requests: {percentiles(tally.latency['small'])}")
    print(f"big requests:   {percentiles(tally.latency['big'])}")
    print(f"hang-ups: {tally.hang_ups}; unanswered after the grace period (abandoned): "
          f"{dict(tally.abandoned) or 0}; admin replies: {dict(sorted(tally.admin.items()))}")
    rss = result["rss"]
    mib = [r / 2**20 for _, r in rss]
    print(f"server RSS: start {mib[0]:,.0f} MiB, middle {mib[len(mib) // 2]:,.0f} MiB, end {mib[-1]:,.0f} MiB, "
          f"peak {max(mib):,.0f} MiB ({len(mib)} samples, 1 s apart)")
    health = result["health"]
    print(f"after the load: {health['queued_texts']} texts queued, {health['in_flight']} other requests in flight")
    summary = [line for line in server_log.splitlines() if "shutdown: " in line]
    print("server, after SIGTERM: " + (summary[-1].split("shutdown: ", 1)[1] if summary else "(no summary logged)"))
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
