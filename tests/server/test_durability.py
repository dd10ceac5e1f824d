"""Nothing acknowledged is lost: SIGKILL a real ``confidently serve`` process under traffic, restart it,
and find every queued text and every label it had answered 200 for (SQLite and PostgreSQL stores)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from confidently.feedback import open_store

from .conftest import make_adapter

REVIEWERS = {"ann": "ann-token-0123456789", "bob": "bob-token-0123456789"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """``python -m confidently.cli serve`` on the tiny model, in its own process."""

    def __init__(self, model: Path, adapters: Path, feedback_db: str, reviewers: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "confidently.cli", "serve", "--model", str(model), "--adapters",
                   str(adapters), "--feedback-db", feedback_db, "--audit-fraction", "1", "--reviewers",
                   str(reviewers), "--port", str(self.port), "--device", "cpu", "--dtype", "float32",
                   "--batch-wait-ms", "0", "--log-level", "warning"]
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}): {log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"the server did not start: {log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)


@pytest.fixture(params=["sqlite", "postgresql"])
def feedback_db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "feedback.db")
    return request.getfixturevalue("postgres_server").new_database()


def test_sigkill_under_traffic_loses_nothing_acknowledged(feedback_db, tmp_path, tiny_model_dir, weights_id):
    adapters = tmp_path / "adapters"
    make_adapter(tiny_model_dir, adapters / "sure", seed=5, weights_id=weights_id, threshold=0.0)
    make_adapter(tiny_model_dir, adapters / "unsure", seed=6, weights_id=weights_id, threshold=None)
    reviewers = tmp_path / "reviewers.json"
    reviewers.write_text(json.dumps(REVIEWERS))
    server = ServeProcess(tiny_model_dir, adapters, feedback_db, reviewers, tmp_path / "serve.log")

    queued: list[tuple[str, int, str]] = []  # (request id, position, text) of every 200 classify reply
    labelled: list[tuple[str, int, str]] = []  # (request id, position, label) of every 200 label reply
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def classify(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for n in range(10_000):
                if stop.is_set():
                    return
                texts = [f"worker {worker} request {n} text {i}" for i in range(3)]
                try:
                    reply = http.post("/v1/classify", json={"texts": texts,
                                                            "adapter": ("sure", "unsure")[n % 2]})
                except httpx.HTTPError as error:
                    failures.append(type(error).__name__)
                    return
                if reply.status_code == 200:
                    with lock:
                        queued.extend((reply.json()["request_id"], i, t) for i, t in enumerate(texts))

    def review(name: str) -> None:
        headers = {"Authorization": f"Bearer {REVIEWERS[name]}"}
        with httpx.Client(base_url=server.url, timeout=30, headers=headers) as http:
            while not stop.is_set():
                try:
                    item = http.get("/v1/review/next").json()["item"]
                    if item is None:
                        time.sleep(0.05)
                        continue
                    label = item["labels"][len(item["text"]) % 2]
                    reply = http.post(f"/v1/review/{item['request_id']}/{item['position']}", json={"label": label})
                except (httpx.HTTPError, ValueError) as error:
                    failures.append(type(error).__name__)
                    return
                if reply.status_code == 200:
                    with lock:
                        labelled.append((item["request_id"], item["position"], label))

    workers = [threading.Thread(target=classify, args=(i,)) for i in range(3)]
    workers += [threading.Thread(target=review, args=(name,)) for name in REVIEWERS]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 120
    while (len(queued) < 30 or len(labelled) < 8) and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # mid-traffic: every worker has a request in flight or about to be
    stop.set()
    for worker in workers:
        worker.join(60)
    assert len(queued) >= 30 and len(labelled) >= 8, (len(queued), len(labelled))
    assert failures, "the kill should have cut some requests off"
    print(f"\nSIGKILL under traffic: {len(queued)} texts acknowledged as queued, {len(labelled)} labels acknowledged, "
          f"{len(failures)} requests cut off by the kill")  # the figures the README's claim rests on (-s)

    restarted = ServeProcess(tiny_model_dir, adapters, feedback_db, reviewers, tmp_path / "serve.log")
    try:
        with open_store(feedback_db) as store:
            for request_id, position, text in queued:
                item = store.item(request_id, position)
                assert item is not None and item.text == text, (request_id, position)
            stored = {(r.request_id, r.position): r.true_label for r in store.labelled(any_adapter=True)}
            for request_id, position, label in labelled:
                assert stored.get((request_id, position)) == label
            pending = store.pending()
        headers = {"Authorization": f"Bearer {REVIEWERS['ann']}"}
        assert httpx.get(restarted.url + "/v1/review/next", headers=headers, timeout=30).json()["pending"] == pending
    finally:
        restarted.stop()
