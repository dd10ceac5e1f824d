"""Backends: where next-token distributions come from.

Backends are plug-ins: the built-in ones and third-party ones are all found through the
``confidently.backends`` entry-point group, so none is special. Each imports its heavy
dependencies lazily.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from confidently.backends.base import Backend
from confidently.errors import ConfigError

BUILT_IN_BACKENDS = {
    "transformers": "confidently.backends.transformers_backend:TransformersBackend",
    "openai": "confidently.backends.openai_backend:OpenAIBackend",
}


def available_backends() -> dict[str, str]:
    """Backend name → ``module:Class`` for the built-ins and every installed plug-in."""
    found = dict(BUILT_IN_BACKENDS)
    for entry in entry_points(group="confidently.backends"):
        found.setdefault(entry.name, entry.value)
    return found


def backend_class(name: str) -> type[Backend]:
    backends = available_backends()
    if name not in backends:
        raise ConfigError(f"unknown backend {name!r}: use one of {', '.join(sorted(backends))}")
    module_name, _, class_name = backends[name].partition(":")
    import importlib

    return getattr(importlib.import_module(module_name), class_name)


def load_backend(name: str = "transformers", **options) -> Backend:
    """Instantiate a backend by name with its options (``model=...``, ``device=...``, ...)."""
    return backend_class(name)(**options)


__all__ = ["BUILT_IN_BACKENDS", "Backend", "available_backends", "backend_class", "load_backend"]
