"""confidently: a language model as a classifier whose confidence numbers can be trusted.

Data flows one way: backend (next-token distribution) → task/verbalizer (class mass) → scores →
calibrator → decision policy → report or server. torch and transformers load only when a model does.
"""

from typing import TYPE_CHECKING

from confidently.classifier import Classifier
from confidently.client import Client
from confidently.errors import (ArtifactError, BackendError, CalibrationError, ConfidentlyError, DataError,
                                ModelLoadError, NotFittedError, TaskError, UnknownModelError)
from confidently.models import DEFAULT_MODEL, REGISTRY
from confidently.tasks import BUILTIN_TASKS, Label, Task, get_task
from confidently.types import Prediction, Scores, TokenProb

__version__ = "0.1.0"

if TYPE_CHECKING:
    from confidently.estimator import CalibratedTextClassifier

#: Exported names whose modules import scipy, pandas or scikit-learn, loaded on first use so
#: ``import confidently`` and the CLI start fast.
_LAZY = {"CalibratedClassifier": "confidently.decisions", "Decisions": "confidently.decisions",
         "decide": "confidently.decisions", "Bundle": "confidently.bundle", "read_bundle": "confidently.bundle",
         "write_bundle": "confidently.bundle", "CalibratedTextClassifier": "confidently.estimator"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'confidently' has no attribute {name!r}")


__all__ = [
    "ArtifactError",
    "BUILTIN_TASKS",
    "BackendError",
    "Bundle",
    "CalibratedClassifier",
    "CalibratedTextClassifier",
    "CalibrationError",
    "Classifier",
    "Client",
    "ConfidentlyError",
    "DEFAULT_MODEL",
    "DataError",
    "Decisions",
    "Label",
    "ModelLoadError",
    "NotFittedError",
    "Prediction",
    "REGISTRY",
    "Scores",
    "Task",
    "TaskError",
    "TokenProb",
    "UnknownModelError",
    "decide",
    "get_task",
    "read_bundle",
    "write_bundle",
]

