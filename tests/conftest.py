"""Shared fixtures: a tiny randomly initialised model built in-process, and the real default model.

Unit tests use the tiny model (seconds); tests marked ``model`` load the real default model once per
session and cover the same code paths on real weights.
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(folder: Path, *, seed: int = 0, chat: bool = True, vocab_extra: tuple[str, ...] = (),
                     hidden_size: int = 32, intermediate_size: int = 64, **architecture) -> Path:
    """A 2-layer Qwen2 with a small byte-level BPE tokenizer, saved like any transformers model.

    ``architecture``: other Qwen2Config values (e.g. a real model's layer count, heads and vocabulary
    size, for benchmarks that need its shapes but not its weights).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|pad|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    corpus = ["yes Yes YES no No NO true false positive negative maybe",
              "the movie was great and I love it, a wonderful film",
              "terrible awful bad boring film, I hate it", *vocab_extra] * 40
    tok.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|im_end|>")
    if chat:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    torch.manual_seed(seed)
    shape = {"vocab_size": len(tokenizer), "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 256, **architecture}
    config = Qwen2Config(hidden_size=hidden_size, intermediate_size=intermediate_size, **shape,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False)
    model = Qwen2ForCausalLM(config)
    # Random init gives near-uniform logits; widen them so label masses differ visibly.
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_gguf(model_dir: Path, path: Path) -> Path:
    """The tiny model written as a GGUF file (float32 tensors, its BPE tokenizer and chat template),
    so the GGUF paths (de-quantizing, the verified cache) run in seconds."""
    import json

    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    config = model.config
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_embedding_length(config.hidden_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_vocab_size(config.vocab_size)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(getattr(config, "rope_theta", 10000.0))
    tokens = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    special = set(tokenizer.all_special_tokens)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), tensor.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def wide_tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny model with wider layers: wide enough that plain bfloat16 scores depend on the batch."""
    return build_tiny_model(tmp_path_factory.mktemp("wide-tiny-model"), hidden_size=64, intermediate_size=512)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny model with other random weights (another weights fingerprint)."""
    return build_tiny_model(tmp_path_factory.mktemp("other-tiny-model"), seed=1)


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir, tmp_path_factory) -> Path:
    return build_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir):
    from confidently.backends.transformers_backend import TransformersBackend

    return TransformersBackend(str(tiny_model_dir), device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def default_classifier():
    """The real default model (qwen2.5-coder-0.5b-instruct), loaded once per test session."""
    if os.environ.get("CONFIDENTLY_SKIP_MODEL_TESTS"):
        pytest.skip("CONFIDENTLY_SKIP_MODEL_TESTS is set")
    from confidently.scoring.classifier import Classifier

    return Classifier(task="sentiment", dtype="float32")



@pytest.fixture(scope="session")
def gemma_classifier():
    """gemma-3-270m in float32 (about 3x faster than the default model), loaded once per test session."""
    if os.environ.get("CONFIDENTLY_SKIP_MODEL_TESTS"):
        pytest.skip("CONFIDENTLY_SKIP_MODEL_TESTS is set")
    from confidently.scoring.classifier import Classifier

    return Classifier(model="gemma-3-270m", dtype="float32")


@pytest.fixture
def cli_with_bundle(tmp_path):
    """Apply a bundle from the command line, each command in a fresh process: ``classify`` the first
    text (``--json``) and ``score`` them all into a CSV. Returns ``(classify's reply, the scored frame)``."""
    import pandas as pd

    cli = [sys.executable, "-m", "confidently"]

    def run(folder: Path, texts: list[str]):
        reply = subprocess.run([*cli, "classify", texts[0], "--calibration", str(folder), "--json", "-k", "0"],
                               capture_output=True, text=True, timeout=600)
        assert reply.returncode == 0, reply.stderr[-2000:]
        data, out = tmp_path / "texts.jsonl", tmp_path / "scores.csv"
        data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        scored = subprocess.run([*cli, "score", str(data), "--out", str(out), "--calibration", str(folder)],
                                capture_output=True, text=True, timeout=600)
        assert scored.returncode == 0, scored.stderr[-2000:]
        return json.loads(reply.stdout), pd.read_csv(out)

    return run


@pytest.fixture(scope="session")
def training_checkpoint(tmp_path_factory):
    """A fine-tuning checkpoint of one optimizer step on a 3-parameter model (tests copy it before damaging it)."""
    torch = pytest.importorskip("torch")
    from confidently.finetune.checkpoint import Progress, save_checkpoint

    parameter = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([parameter], lr=0.1)
    parameter.sum().backward()
    optimizer.step()
    folder = tmp_path_factory.mktemp("train") / "run.checkpoint"
    progress = Progress(step=1, examples_seen=4, train_seconds=0.5, best_loss=0.7, best_step=1,
                        history=[{"step": 1, "loss": 0.7}], losses_since_eval=[0.6])
    save_checkpoint(folder, weights={"w": torch.zeros(2)}, best={"w": torch.zeros(2)}, optimizer=optimizer,
                    rng={"cpu": torch.get_rng_state()}, progress=progress, identity={"data": "x"})
    return folder

# -- PostgreSQL: Debian's ``postgresql`` package, started on loopback in a temporary folder (as the
# ``postgres`` user when the tests run as root); its tests skip when the package is not installed.

def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """initdb + pg_ctl in a temporary folder, listening on 127.0.0.1 at a free port."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="confidently-pg-"))
        self.data = self.folder / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._as_postgres = os.geteuid() == 0  # postgres refuses to run as root
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._counter = itertools.count()

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "confidently", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://confidently@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"test_{next(self._counter)}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


# -- OpenAI-compatible servers for the openai backend's and the engine-serving tests: the fake one
# (fake_server.py: error paths, request shapes) and llama-cpp-python's (real model output). The real
# one serves the default model's GGUF on a free loopback port, started once per session; its tests are
# skipped with the reason when ``llama_cpp`` is not installed or model tests are switched off.

LLAMA_INSTALL = ("CMAKE_ARGS=-DGGML_NATIVE=OFF pip install 'llama-cpp-python[server]' "
                 "(or the wheel cached by .ci/run)")


@pytest.fixture
def fake_server():
    from fake_server import FakeServer

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
    from fake_server import free_port

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


def pytest_collection_modifyitems(config, items):
    if os.environ.get("CONFIDENTLY_SKIP_MODEL_TESTS"):
        skip = pytest.mark.skip(reason="CONFIDENTLY_SKIP_MODEL_TESTS is set")
        for item in items:
            if "model" in item.keywords:
                item.add_marker(skip)
