"""A real server on loopback (uvicorn in a thread, free port) over the tiny model and its adapters.

Adapter ``alpha`` (sentiment task) ships a temperature calibrator and a policy; ``beta`` (a 3-label
task) ships only a policy, so its threshold applies to raw confidence; the base model has neither.
``foreign`` (other base weights) is refused at start-up and ``nested/gamma`` is not found by it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from confidently.bundle.bundle import ADAPTER_CONFIG_FILE, WEIGHTS_FILE, ModelIdentity, read_bundle, write_bundle
from confidently.calibration import TemperatureCalibrator
from confidently.tasks.task import SENTIMENT, Label, Task
from confidently.decision.policy import DecisionPolicy

ADMIN_TOKEN = "test-admin-token"
TRIAGE = Task(name="triage", template="Is this text positive? Answer yes, no or maybe.\nText: {text}",
              labels=(Label("negative", ("no",)), Label("unsure", ("maybe",)), Label("positive", ("yes",))))


def make_adapter(model_dir: Path, out: Path, *, seed: int, weights_id: str, task: Task = SENTIMENT,
                 calibrator: bool = True, threshold: float | None = 0.6, model_name: str = "tiny",
                 extra_json: dict | None = None) -> Path:
    """A random LoRA adapter for the tiny model, saved as the fine-tuning stage saves it: a calibration
    bundle (manifest with base weights, task and every file's sha256) around PEFT's files, with
    ``extra_json`` payloads (canary, reference, calibration rows) when given."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    fitted = None
    if calibrator:
        rng = np.random.default_rng(seed)
        probs = rng.dirichlet(np.ones(len(task.labels)), size=200)
        y = np.array([rng.choice(len(p), p=p) for p in probs])
        fitted = TemperatureCalibrator().fit(probs, y)
    policy = DecisionPolicy(threshold=threshold, target_accuracy=0.9, certified=True, method="test")
    kept = lambda path: None  # noqa: E731  (PEFT has already written it there)
    write_bundle(out, model=ModelIdentity(model_name, "transformers", weights_id, "float32"), task=task, chat=None,
                 calibrator=fitted, policy=policy, fitted_on={"rows_sha256": "0" * 64, "n_rows": 200},
                 extra_files={WEIGHTS_FILE: kept, ADAPTER_CONFIG_FILE: kept}, extra_json=extra_json)
    return out


def rebundle(folder, change=None, *, extra_json=None) -> None:
    """Change an adapter's LoRA tensors in place (``change(key, tensor)``) and re-create its bundle around
    them, as `confidently finetune` would have written it, with ``extra_json`` added."""
    from safetensors.torch import load_file, save_file

    old = read_bundle(folder)
    path = folder / WEIGHTS_FILE
    if change is not None:
        save_file({key: change(key, value) for key, value in load_file(path).items()}, path)
    kept = lambda path: None  # noqa: E731  (already in place)
    write_bundle(folder, model=old.model, task=old.task, chat=old.chat, calibrator=old.calibrator,
                 policy=old.policy, fitted_on=old.fitted_on, extra_files={WEIGHTS_FILE: kept, ADAPTER_CONFIG_FILE: kept},
                 extra_json={**old.extras, **(extra_json or {})})


@pytest.fixture(scope="session")
def weights_id(tiny_backend) -> str:
    return tiny_backend.weights_id


@pytest.fixture(scope="session")
def adapters_dir(tmp_path_factory, tiny_model_dir, weights_id) -> Path:
    root = tmp_path_factory.mktemp("adapters")
    make_adapter(tiny_model_dir, root / "alpha", seed=1, weights_id=weights_id)
    make_adapter(tiny_model_dir, root / "beta", seed=2, weights_id=weights_id, task=TRIAGE, calibrator=False,
                 threshold=0.5)
    # Not loaded at start-up: one for another base model (refused), one below a sub-folder.
    make_adapter(tiny_model_dir, root / "foreign", seed=4, weights_id="f" * 64)
    make_adapter(tiny_model_dir, root / "nested" / "gamma", seed=3, weights_id=weights_id)
    return root


class LiveServer:
    """``confidently serve``'s uvicorn server for ``app`` on a free loopback port in a background thread."""

    def __init__(self, app):
        from confidently.server.runner import listen, make_server

        self.app = app
        self._socket = listen("127.0.0.1", 0)
        self.address = self._socket.getsockname()
        self.url = f"http://127.0.0.1:{self.address[1]}"
        self.server = make_server(app, log_level="warning")
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        self._socket.close()


@pytest.fixture(scope="session")
def serve_backend():
    """Serve an already loaded backend: ``with serve_backend(backend, **settings) as live: ...``."""
    from confidently.server.app import create_app
    from confidently.server.settings import Settings

    def start(backend, **options) -> LiveServer:
        settings = Settings(model=backend.model_name, **{"admin_token": ADMIN_TOKEN, "max_texts": 64, **options})
        return LiveServer(create_app(settings, backend=backend))

    return start


@pytest.fixture(scope="session")
def serve(serve_backend, tiny_model_dir):
    """Start a server over a fresh tiny backend: ``with serve(adapters_dir=..., ...) as live: ...``."""
    from confidently.backends.transformers_backend import TransformersBackend

    def start(**options) -> LiveServer:
        return serve_backend(TransformersBackend(str(tiny_model_dir), device="cpu", dtype="float32"), **options)

    return start


@pytest.fixture(scope="module")
def server(serve, adapters_dir):
    """One running server per test module, with alpha and beta loaded."""
    with serve(adapters_dir=adapters_dir) as live:
        yield live


@pytest.fixture()
def http(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def wait_until(condition, *, timeout: float = 120, what: str = "the condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (generous: only a hang takes it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class HeldModel:
    """Keeps the server's model worker busy until released, so requests queue up deterministically."""

    def __init__(self, live: LiveServer):
        self.batcher = live.app.state.service.batcher
        self.running, self.release = threading.Event(), threading.Event()

    def _hold(self) -> None:
        self.running.set()
        self.release.wait(120)

    def __enter__(self) -> HeldModel:
        self.batcher.call(self._hold)
        assert self.running.wait(60), "the model worker did not pick up the hold"
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
