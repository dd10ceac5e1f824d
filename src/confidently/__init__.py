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

__all__ = [
    "ArtifactError",
    "BUILTIN_TASKS",
    "BackendError",
    "CalibratedTextClassifier",
    "CalibrationError",
    "Classifier",
    "Client",
    "ConfidentlyError",
    "DEFAULT_MODEL",
    "DataError",
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
    "get_task",
]


def __getattr__(name: str):
    # the estimator imports scikit-learn (seconds), so ``import confidently`` loads it only when asked for
    if name == "CalibratedTextClassifier":
        from confidently.estimator import CalibratedTextClassifier

        return CalibratedTextClassifier
    raise AttributeError(f"module 'confidently' has no attribute {name!r}")
