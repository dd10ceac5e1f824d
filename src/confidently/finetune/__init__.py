"""LoRA fine-tuning of the classifier's own prompt, saved as a calibrated PEFT adapter.

As in PEFT, the settings (:mod:`~confidently.finetune.config`), the model wiring
(:mod:`~confidently.finetune.model`) and the loop (:mod:`~confidently.finetune.trainer`) live apart;
:mod:`~confidently.finetune.data` builds the batches, :mod:`~confidently.finetune.artifacts` writes
the folder (a calibration bundle, read back with :func:`confidently.bundle.bundle.read_bundle`), and
:func:`finetune` runs everything. Names are imported on first use (PEP 562), so the
command line can read :class:`FinetuneConfig` without loading torch or scikit-learn.

>>> from confidently.finetune import FinetuneConfig, finetune  # doctest: +SKIP
>>> finetune(train, "adapters/sst2", FinetuneConfig(model="gemma-3-270m"))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "FinetuneConfig": "confidently.finetune.config",
    "FinetuneResult": "confidently.finetune.run",
    "TrainingResult": "confidently.finetune.trainer",
    "finetune": "confidently.finetune.run",
}

if TYPE_CHECKING:
    from confidently.finetune.config import FinetuneConfig
    from confidently.finetune.run import FinetuneResult, finetune
    from confidently.finetune.trainer import TrainingResult


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'confidently.finetune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["FinetuneConfig", "FinetuneResult", "TrainingResult", "finetune"]
