"""confidently: a language model as a classifier whose confidence numbers can be trusted.

Data flows one way: backend (next-token distribution) → task/verbalizer (class mass) → scores →
calibrator → decision policy → report or server. Importing the package is cheap: each public name
is imported on first use (PEP 562), so torch, transformers and pydantic load only when needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from confidently.errors import (ArtifactError, BackendError, BundleMismatchError, CalibrationError, ConfidentlyError,
                                ConfigError, DataError, ModelLoadError, NotFittedError, OutputBusyError, TaskError,
                                UnfinishedRunError, UnknownModelError)

__version__ = "0.1.0"

# public name -> the module that defines it, imported on first access (the estimator imports
# scikit-learn, seconds; the client pydantic)
_LAZY = {
    "Bundle": "confidently.bundle.bundle",
    "read_bundle": "confidently.bundle.bundle",
    "write_bundle": "confidently.bundle.bundle",
    "CalibratedClassifier": "confidently.decision.calibrated",
    "Decisions": "confidently.decision.decisions",
    "decide": "confidently.decision.decisions",
    "CalibratedTextClassifier": "confidently.workflows.estimator",
    "Classifier": "confidently.scoring.classifier",
    "Client": "confidently.client",
    "DEFAULT_MODEL": "confidently.models.registry",
    "REGISTRY": "confidently.models.registry",
    "BUILTIN_TASKS": "confidently.tasks.task",
    "Label": "confidently.tasks.task",
    "Task": "confidently.tasks.task",
    "get_task": "confidently.tasks.task",
    "Prediction": "confidently.types",
    "Scores": "confidently.types",
    "TokenProb": "confidently.types",
}

if TYPE_CHECKING:
    from confidently.bundle.bundle import Bundle, read_bundle, write_bundle
    from confidently.scoring.classifier import Classifier
    from confidently.client import Client
    from confidently.decision.calibrated import CalibratedClassifier
    from confidently.decision.decisions import Decisions, decide
    from confidently.workflows.estimator import CalibratedTextClassifier
    from confidently.models.registry import DEFAULT_MODEL, REGISTRY
    from confidently.tasks.task import BUILTIN_TASKS, Label, Task, get_task
    from confidently.types import Prediction, Scores, TokenProb


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'confidently' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ArtifactError",
    "BUILTIN_TASKS",
    "BackendError",
    "Bundle",
    "BundleMismatchError",
    "CalibratedClassifier",
    "CalibratedTextClassifier",
    "CalibrationError",
    "Classifier",
    "Client",
    "ConfidentlyError",
    "ConfigError",
    "DEFAULT_MODEL",
    "DataError",
    "Decisions",
    "Label",
    "ModelLoadError",
    "NotFittedError",
    "OutputBusyError",
    "Prediction",
    "REGISTRY",
    "Scores",
    "Task",
    "TaskError",
    "TokenProb",
    "UnfinishedRunError",
    "UnknownModelError",
    "decide",
    "get_task",
    "read_bundle",
    "write_bundle",
]
