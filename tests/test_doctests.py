"""Run the examples in the package's docstrings, so documentation that drifts from the code fails.

Examples that need a real model are marked ``+SKIP``; the README test runs those paths."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import confidently

PACKAGE_ROOT = Path(confidently.__file__).parent


def modules_with_examples() -> list[str]:
    found = []
    for module in pkgutil.walk_packages([str(PACKAGE_ROOT)], prefix="confidently."):
        relative = Path(*module.name.split(".")[1:])
        source = PACKAGE_ROOT / relative / "__init__.py" if module.ispkg else PACKAGE_ROOT / f"{relative}.py"
        if ">>> " in source.read_text(encoding="utf-8"):
            found.append(module.name)
    return found


MODULES = modules_with_examples()


def test_examples_are_found():
    assert "confidently.metrics.functions" in MODULES and "confidently.data.splits" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), report=True,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} failed (see above)"
