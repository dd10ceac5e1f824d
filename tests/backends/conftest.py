"""Servers for the openai backend's tests: the fake one (error paths) and llama.cpp's (real model output).

The real server is llama-cpp-python's OpenAI-compatible server serving the default model's GGUF on
a free loopback port, started once per session; its tests are skipped with the reason when
``llama_cpp`` is not installed or model tests are switched off.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fake_server import FakeServer, free_port

LLAMA_INSTALL = ("CMAKE_ARGS=-DGGML_NATIVE=OFF pip install 'llama-cpp-python[server]' "
                 "(or the wheel cached by .ci/run)")


@pytest.fixture
def fake_server():
    with FakeServer() as server:
        yield server


@dataclass(frozen=True)
class LlamaServer:
    url: str
    model: str  # the alias the server answers to
    log: Path


def _server_env() -> dict[str, str]:
    """The environment without anything llama_cpp.server's settings would read (HOST, PORT, MODEL…)."""
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    names = {name.upper() for cls in (ModelSettings, ServerSettings) for name in cls.model_fields}
    return {key: value for key, value in os.environ.items() if key.upper() not in names}


def _wait_until_ready(process: subprocess.Popen, url: str, log: Path, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # the model loads before the port opens
        time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server did not answer {url}/models within {timeout:.0f} s:\n"
                       f"{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama-cpp-python's server on the default model's GGUF (n_ctx 512, 2 threads, alias ``test``)."""
    if os.environ.get("CONFIDENTLY_SKIP_MODEL_TESTS"):
        pytest.skip("CONFIDENTLY_SKIP_MODEL_TESTS is set")
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(f"llama-cpp-python is not installed: {LLAMA_INSTALL}")
    from confidently.errors import UnknownModelError
    from confidently.models.registry import resolve_model

    try:
        source = resolve_model("qwen2.5-coder-0.5b-instruct")
    except UnknownModelError as error:
        pytest.skip(str(error))
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(Path(source.path) / source.gguf_file),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "2",
               "--model_alias", "test", "--logits_all", "true", "--verbose", "false"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_server_env())
    try:
        _wait_until_ready(process, url, log)
        yield LlamaServer(url, "test", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
