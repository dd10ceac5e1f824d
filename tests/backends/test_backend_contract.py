"""The backend contract, run over every built-in backend.

Every backend must offer the same interface and, given the same next-token distribution, yield
the same class masses. The local backend runs the tiny in-process model; the OpenAI-compatible
backend talks to the fake server, which here serves that same tiny model's distribution, so the
two can be compared number for number. Plug-ins are found through the ``confidently.backends``
entry-point group; discovery is tested with a plug-in installed into a temporary folder.
"""

from __future__ import annotations

import sys
import textwrap
from importlib import metadata

import numpy as np
import pytest
from fake_server import FakeServer, model_distribution

from confidently.backends import BUILT_IN_BACKENDS, available_backends, backend_class, load_backend
from confidently.backends.base import Backend
from confidently.backends.openai_backend import OpenAIBackend
from confidently.scoring.classifier import Classifier
from confidently.errors import ConfigError
from confidently.tasks.task import SENTIMENT, Task

TEXTS = ["the movie was great", "a dull, tired film", "it rained all day", "I would watch it again"]


@pytest.fixture(scope="module")
def served_tiny_model(tiny_backend):
    """A fake OpenAI-compatible server whose next-token distribution is the tiny model's."""
    with FakeServer() as server:
        server.behaviour.token_ids = True
        server.behaviour.distribution = model_distribution(tiny_backend)
        yield server


@pytest.fixture(params=sorted(BUILT_IN_BACKENDS))
def contract_backend(request, tiny_backend, tiny_model_dir, served_tiny_model) -> Backend:
    """Each built-in backend, set up to compute the tiny model's distribution."""
    if request.param == "transformers":
        return tiny_backend
    if request.param == "openai":
        return OpenAIBackend("tiny", base_url=served_tiny_model.url, tokenizer=str(tiny_model_dir),
                             endpoint="completions", max_retries=1, timeout=30.0)
    raise AssertionError(f"no contract fixture for the built-in backend {request.param!r}: add one here")


def test_every_built_in_backend_is_registered_as_an_entry_point():
    registered = {entry.name: entry.value for entry in metadata.entry_points(group="confidently.backends")}
    assert {name: registered.get(name) for name in BUILT_IN_BACKENDS} == BUILT_IN_BACKENDS


def test_interface(contract_backend):
    registry_name = next(name for name, target in BUILT_IN_BACKENDS.items()
                         if target.endswith(f":{type(contract_backend).__name__}"))
    assert isinstance(contract_backend, Backend) and contract_backend.name == registry_name
    assert isinstance(contract_backend.model_name, str) and contract_backend.weights_id
    assert contract_backend.fingerprint().startswith(f"{registry_name}:")
    assert len(contract_backend.vocabulary()) > 0 and contract_backend.max_context > 0


@pytest.mark.parametrize("chat", [True, False])
def test_prompt_parts_frame_the_text(contract_backend, chat):
    task = Task("t", 'Is this positive? "{text}"', SENTIMENT.labels, system_prompt="Answer yes or no.")
    prefix, suffix = contract_backend.prompt_parts(task, chat=chat)
    for text in TEXTS:
        whole = contract_backend.format_prompt(task.message(text), chat=chat, system_prompt=task.system_prompt,
                                               answer_suffix=task.answer_suffix)
        assert prefix + text + suffix == whole


def test_class_masses_are_probabilities(contract_backend):
    prompts = [contract_backend.format_prompt(SENTIMENT.message(text)) for text in TEXTS]
    mass, other, uncovered = contract_backend.score_prompts(prompts, contract_backend.verbalizer(SENTIMENT))
    assert mass.shape == (len(TEXTS), len(SENTIMENT.labels)) and other.shape == (len(TEXTS),)
    assert np.all(mass >= 0) and np.all(other >= 0)
    covered = mass.sum(axis=1) + other
    if contract_backend.exact:
        assert uncovered is None or np.allclose(uncovered, 0)
        np.testing.assert_allclose(covered, 1.0, atol=1e-5)
    else:
        assert uncovered.shape == (len(TEXTS),) and np.all(uncovered >= 0)
        np.testing.assert_allclose(covered + uncovered, 1.0, atol=1e-5)


def test_same_distribution_gives_the_same_class_scores(contract_backend, tiny_backend):
    """Scored through the whole classifier, every backend agrees with the local model it serves."""
    reference = Classifier(model="tiny", backend=tiny_backend).score(TEXTS)
    scores = Classifier(model="tiny", backend=contract_backend).score(TEXTS)
    np.testing.assert_allclose(scores.mass, reference.mass, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(scores.probs, reference.probs, rtol=1e-4, atol=1e-6)


def test_top_k_masses_bound_the_exact_ones(served_tiny_model, tiny_model_dir, tiny_backend):
    """Without token ids a server returns its top-k: the class mass is a lower bound, plus what was
    not returned an upper bound, of the exact mass."""
    top_k = OpenAIBackend("tiny", base_url=served_tiny_model.url, tokenizer=str(tiny_model_dir),
                          endpoint="completions", token_ids=False, top_logprobs=50)
    exact = Classifier(model="tiny", backend=tiny_backend).score(TEXTS)
    scores = Classifier(model="tiny", backend=top_k).score(TEXTS)
    assert np.all(scores.mass <= exact.mass + 1e-6)
    assert np.all(scores.mass + scores.uncovered_mass[:, None] >= exact.mass - 1e-6)
    assert np.all(scores.uncovered_mass > 0)


# -- plug-in discovery --------------------------------------------------------------------------------
PLUGIN = '''
from confidently.backends.openai_backend import OpenAIBackend


class EchoBackend(OpenAIBackend):
    """A third-party backend: the OpenAI-compatible one under another name."""

    name = "echo"
'''


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A plug-in distribution (module + dist-info with an entry point) importable from tmp_path."""
    (tmp_path / "echo_backend.py").write_text(textwrap.dedent(PLUGIN))
    info = tmp_path / "echo_backend-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-backend\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[confidently.backends]\necho = echo_backend:EchoBackend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("echo_backend", None)


def test_a_plug_in_is_discovered_and_loaded(installed_plugin, served_tiny_model):
    assert available_backends()["echo"] == "echo_backend:EchoBackend"
    assert backend_class("echo").name == "echo"
    backend = load_backend("echo", model="tiny", base_url=served_tiny_model.url, tokenizer=None,
                           endpoint="completions")
    mass, _, _ = backend.score_prompts([SENTIMENT.message("great") + "\nAnswer:"], backend.verbalizer(SENTIMENT))
    assert mass.shape == (1, 2)


def test_a_plug_in_cannot_shadow_a_built_in(tmp_path, monkeypatch):
    info = tmp_path / "shadow-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shadow\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[confidently.backends]\ntransformers = shadow:Evil\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert available_backends()["transformers"] == BUILT_IN_BACKENDS["transformers"]


def test_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError, match="unknown backend 'nope': use one of .*openai.*transformers"):
        backend_class("nope")
