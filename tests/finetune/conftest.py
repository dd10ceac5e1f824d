"""Fixtures for fine-tuning tests: a trivially separable dataset and fast settings for the tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from confidently.data import Dataset
from confidently.finetune import FinetuneConfig

#: Every linear layer of the tiny Qwen2: a 2-layer random model needs more than attention to learn fast.
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_FILLERS = ("the film", "a movie", "it was", "I think", "the", "and")


def make_separable(n: int, seed: int) -> Dataset:
    """Texts that say "great" (positive) or "awful" (negative) among filler words, with slice columns.

    Every fifth row is marked neutral in ``sentiment`` so the neutral-by-domain table has rows.
    """
    rng = np.random.default_rng(seed)
    texts, labels, categories, domains, sentiments = [], [], [], [], []
    for i in range(n):
        positive = i % 2 == 1
        word = "great" if positive else "awful"
        texts.append(f"{_FILLERS[rng.integers(6)]} {word} {_FILLERS[rng.integers(6)]} {seed}-{i}")
        labels.append("positive" if positive else "negative")
        categories.append("strong" if i % 3 else "weak")
        domains.append("sports" if i % 4 < 2 else "workplace")
        sentiments.append("neutral" if i % 5 == 0 else labels[-1])
    return Dataset(texts, labels, {"category": categories, "domain": domains, "sentiment": sentiments})


def make_tiny_config(model_dir, **overrides) -> FinetuneConfig:
    """Settings under which the tiny model learns :func:`separable` in a few seconds."""
    settings = dict(model=str(model_dir), batch_size=8, grad_accum=1, learning_rate=3e-3, epochs=4,
                    target_modules=ALL_LINEAR, patience=0, seed=0)
    return FinetuneConfig(**{**settings, **overrides})


@pytest.fixture(scope="session")
def separable():
    """:func:`make_separable`, as a fixture (test modules here are not importable as a package)."""
    return make_separable


@pytest.fixture(scope="session")
def tiny_config(tiny_model_dir):
    """``tiny_config(**overrides)``: :func:`make_tiny_config` for the session's tiny model."""
    return lambda **overrides: make_tiny_config(tiny_model_dir, **overrides)


@pytest.fixture(scope="session")
def backend(tiny_model_dir):
    """The fine-tuning tests' own backend (adapters they load never reach other tests' backends)."""
    from confidently.backends.transformers_backend import TransformersBackend

    return TransformersBackend(str(tiny_model_dir), dtype="float32")


@pytest.fixture(scope="session")
def trained(backend, tiny_config, tmp_path_factory):
    """One fine-tuning run on 240 separable rows, shared by the tests."""
    from confidently.finetune import finetune

    out = tmp_path_factory.mktemp("adapters") / "separable"
    return finetune(make_separable(240, seed=0), out, tiny_config(), backend=backend, progress=False)
