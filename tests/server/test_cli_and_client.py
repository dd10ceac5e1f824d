"""``confidently serve`` as a real process (graceful shutdown), ``classify --server``, and :class:`Client`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from confidently import Client
from confidently.cli import app
from confidently.client import ServerError
from confidently.errors import BackendError

from .conftest import ADMIN_TOKEN, wait_until

TEXTS = ["the movie was great", "I hate it"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(serve, adapters_dir):
    with serve(adapters_dir=adapters_dir) as live:
        yield live


def test_client_round_trip(server):
    with Client(server.url, admin_token=ADMIN_TOKEN) as client:
        assert client.health().status == "ok"
        assert [a.name for a in client.adapters().adapters] == ["alpha", "beta"]
        reply = client.classify(TEXTS, adapter="alpha")
        assert len(reply.results) == 2 and reply.results[0].calibrated
        assert client.classify("just one").results[0].label in reply.labels
        assert client.load_adapter("gamma", path="nested/gamma").path == "nested/gamma"
        assert client.unload_adapter("gamma").name == "gamma"
        with pytest.raises(ServerError, match="failed with 404: no adapter named 'zeta'") as caught:
            client.classify(TEXTS, adapter="zeta")
        assert caught.value.status_code == 404
    with Client(server.url) as anonymous, pytest.raises(ServerError, match="401: missing admin token"):
        anonymous.load_adapter("gamma", path="nested/gamma")


def test_client_reports_an_unreachable_server():
    with Client(f"http://127.0.0.1:{free_port()}", timeout=5) as client:
        with pytest.raises(BackendError, match="cannot reach the confidently server"):
            client.health()


def test_classify_with_server_option(server):
    runner = CliRunner()
    result = runner.invoke(app, ["classify", "the movie was great", "--server", server.url, "--adapter", "alpha",
                                 "--json", "--top-k", "3"])
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    assert reply["adapter"] == "alpha" and len(reply["results"][0]["top_tokens"]) == 3
    table = runner.invoke(app, ["classify", "I hate it", "--server", server.url, "--adapter", "alpha", "-k", "0"])
    assert table.exit_code == 0 and "calibrated" in table.output and "decision" in table.output


def test_serve_help_has_an_example():
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "Example: confidently serve" in result.output


def test_serve_process_finishes_in_flight_requests_on_sigterm(tiny_model_dir, adapters_dir):
    """Requests in flight at SIGTERM all finish (the drain window is ample), whatever the machine's speed:
    the test waits on the server's own count of requests in flight, and its deadlines grow with the
    measured time of one request."""
    port = free_port()
    env = {**os.environ, "CONFIDENTLY_ADMIN_TOKEN": ADMIN_TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "confidently.cli", "serve", "--model", str(tiny_model_dir), "--adapters",
         str(adapters_dir), "--port", str(port), "--log-level", "info", "--batch-size", "2",
         "--drain-timeout", "600"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is None and _healthy(url), timeout=600, what="the server to start")
        # The admin token came from the environment.
        assert httpx.delete(url + "/v1/adapters/beta", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
                            ).status_code == 200
        body = {"texts": [f"text number {i}, the movie was great" for i in range(8)], "adapter": "alpha"}
        started = time.monotonic()
        assert httpx.post(url + "/v1/classify", json=body, timeout=600).status_code == 200
        patience = 60 + 50 * (time.monotonic() - started)  # for the eight requests together, with room
        replies: list[tuple[httpx.Response, float]] = []

        def post() -> None:
            reply = httpx.post(url + "/v1/classify", json=body, timeout=patience)
            replies.append((reply, time.monotonic()))

        requests = [threading.Thread(target=post) for _ in range(8)]
        for request in requests:
            request.start()
        # Scored in parts that take turns, the eight requests are all in flight together for a while.
        wait_until(lambda: httpx.get(url + "/healthz", timeout=patience).json()["in_flight"] == 8, timeout=patience,
                   what="eight requests in flight")
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        for request in requests:
            request.join(patience)
        assert len(replies) == 8
        for reply, _ in replies:
            assert reply.status_code == 200, reply.text
            assert len(reply.json()["results"]) == 8
        assert any(answered > signalled for _, answered in replies)  # answered after the signal: drained
        # uvicorn re-raises the signal once shutdown is complete, so the exit status is "killed by SIGTERM".
        assert process.wait(patience) in (0, -signal.SIGTERM)
        log = process.stdout.read()
        drained = re.search(r"shutdown: of (\d+) requests in flight, (\d+) finished and 0 were refused with 503 "
                            r"\(drain window 600 s\)", log)
        assert drained and drained[1] == drained[2] and int(drained[1]) >= 1, log
    finally:
        if process.poll() is None:
            process.kill()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_a_client_url_without_a_scheme_says_so():
    from confidently.errors import ConfigError

    # before: BackendError "cannot reach ... unsupported protocol 'localhost://'" on the first call
    with pytest.raises(ConfigError, match=r"Client URL 'localhost:8000' has no http:// or https://"):
        Client("localhost:8000")
