"""LoRA fine-tuning of the classifier's own prompt, saved as a calibrated PEFT adapter.

As in PEFT, the settings (:mod:`~confidently.finetune.config`), the model wiring
(:mod:`~confidently.finetune.model`) and the loop (:mod:`~confidently.finetune.trainer`) live apart;
:mod:`~confidently.finetune.data` builds the batches, :mod:`~confidently.finetune.artifacts` writes
the folder (a calibration bundle, read back with :func:`confidently.bundle.read_bundle`), and
:func:`finetune` runs everything.

>>> from confidently.finetune import FinetuneConfig, finetune  # doctest: +SKIP
>>> finetune(train, "adapters/sst2", FinetuneConfig(model="gemma-3-270m"))  # doctest: +SKIP
"""

from confidently.finetune.config import FinetuneConfig
from confidently.finetune.run import FinetuneResult, finetune, run_finetune
from confidently.finetune.trainer import TrainingResult

__all__ = ["FinetuneConfig", "FinetuneResult", "TrainingResult", "finetune", "run_finetune"]
