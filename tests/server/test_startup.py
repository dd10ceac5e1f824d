"""``confidently serve`` checks paths, options and artifacts before it loads the model, and reports a
problem as one line; the API serves no page that needs a CDN."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from confidently.backends import transformers_backend
from confidently.calibration import TemperatureCalibrator
from confidently.cli import app
from confidently.errors import ConfidentlyError
from confidently.tasks.task import SENTIMENT
from confidently.decision.policy import DecisionPolicy

from .conftest import TRIAGE


@pytest.fixture()
def no_model_load(monkeypatch):
    """Any attempt to load a model fails the test: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(transformers_backend.TransformersBackend, "__init__", refuse)


def bundle(folder, model_dir, *, weights_id=None, task=SENTIMENT):
    """A calibration bundle for the tiny model, written without loading it."""
    from confidently.bundle.bundle import ModelIdentity, write_bundle
    from confidently.models.registry import resolve_model

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(task.labels)), size=50)
    write_bundle(folder, model=ModelIdentity(str(model_dir), "transformers",
                                             weights_id or resolve_model(str(model_dir)).weights_id),
                 task=task, chat=None, calibrator=TemperatureCalibrator().fit(probs, probs.argmax(axis=1)),
                 policy=DecisionPolicy(0.8, 0.9, True, "test"), fitted_on={"rows_sha256": "0" * 64, "n_rows": 50})
    return folder


@pytest.mark.parametrize("case, expected", [
    ("unknown model", "unknown model"),
    ("unknown task", "nope"),
    ("bundle for another task", "was fitted for task 'triage'"),
    ("bundle for other weights", "was fitted on"),
    ("tampered bundle", "calibrator.json changed since the bundle was written"),
    ("bundle without policy", "policy.json is missing"),
    ("port in use", "cannot listen on 127.0.0.1:"),
])
def test_bad_options_fail_before_the_model_loads(case, expected, tiny_model_dir, tmp_path, no_model_load):
    args = ["serve", "--model", str(tiny_model_dir)]
    busy = socket.socket()
    run = tmp_path / "run"
    try:
        if case == "unknown model":
            args[2] = str(tmp_path / "no-such-model")
        elif case == "unknown task":
            args += ["--task", "nope"]
        elif case == "bundle for another task":
            args += ["--calibration", str(bundle(run, tiny_model_dir, task=TRIAGE)), "--task", "sentiment"]
        elif case == "bundle for other weights":
            args += ["--calibration", str(bundle(run, tiny_model_dir, weights_id="f" * 64))]
        elif case == "tampered bundle":
            bundle(run, tiny_model_dir)
            (run / "calibrator.json").write_text((run / "calibrator.json").read_text() + " ")
            args += ["--calibration", str(run)]
        elif case == "bundle without policy":
            (bundle(run, tiny_model_dir) / "policy.json").unlink()
            args += ["--calibration", str(run)]
        else:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            args += ["--port", str(busy.getsockname()[1])]
        result = CliRunner().invoke(app, args)
    finally:
        busy.close()
    assert isinstance(result.exception, ConfidentlyError), result.exception
    assert expected in str(result.exception)


def test_a_startup_error_is_one_line_without_a_traceback(tiny_model_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "confidently.cli", "serve", "--model", str(tiny_model_dir),
                               "--port", str(port)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another "
                                   "process uses that port; pick another with --port)")


def test_no_page_needs_a_cdn(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/docs").status_code == 404 and http.get("/redoc").status_code == 404
        schema = http.get("/openapi.json")
        assert schema.status_code == 200 and "/v1/classify" in schema.json()["paths"]
        for route in server.app.routes:
            if "GET" in getattr(route, "methods", ()) and "{" not in route.path:
                assert "cdn" not in http.get(route.path).text.lower(), route.path


class _Checked(Exception):
    """Raised by the stand-in for the pre-load checks once it has recorded the settings."""


def test_adapters_without_model_serve_the_base_model_they_were_fine_tuned_on(tiny_model_dir, weights_id, tmp_path,
                                                                             monkeypatch, no_model_load):
    # README's Serving example has no --model: adapters fine-tuned on gemma-3-270m must not be
    # skipped for a weights mismatch with the default model.
    from confidently.server import startup

    from .conftest import make_adapter

    make_adapter(tiny_model_dir, tmp_path / "adapters" / "alpha", seed=1, weights_id=weights_id,
                 model_name=str(tiny_model_dir))
    seen = {}

    def record(settings):
        seen["model"] = settings.model
        raise _Checked

    monkeypatch.setattr(startup, "check_before_loading", record)
    result = CliRunner().invoke(app, ["serve", "--adapters", str(tmp_path / "adapters")])
    assert isinstance(result.exception, _Checked), result.output
    assert seen["model"] == str(tiny_model_dir)
    # --model given wins
    CliRunner().invoke(app, ["serve", "--adapters", str(tmp_path / "adapters"), "--model", "gemma-3-270m"])
    assert seen["model"] == "gemma-3-270m"


def test_adapters_of_different_base_models_without_model_are_one_line(tiny_model_dir, weights_id, tmp_path,
                                                                      no_model_load):
    from .conftest import make_adapter

    make_adapter(tiny_model_dir, tmp_path / "adapters" / "alpha", seed=1, weights_id=weights_id, model_name="m-one")
    make_adapter(tiny_model_dir, tmp_path / "adapters" / "beta", seed=2, weights_id=weights_id, model_name="m-two")
    result = CliRunner().invoke(app, ["serve", "--adapters", str(tmp_path / "adapters")])
    assert isinstance(result.exception, ConfidentlyError), result.exception
    assert "different base models (alpha: m-one, beta: m-two)" in str(result.exception)
    assert "--model" in str(result.exception)
