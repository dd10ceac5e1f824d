"""What a fine-tuning run does: one dataclass of LoRA, optimisation, data-split and calibration settings.

As in PEFT's ``LoraConfig``, every field carries its help text in ``metadata["help"]`` (the command
line reads it from there, so it is written once) and :meth:`FinetuneConfig.__post_init__` checks
each value and the combinations, raising :class:`~confidently.errors.ConfigError` naming them.
The whole config is stored in the adapter's manifest (``hyperparameters``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from confidently.defaults import DEFAULT_PROCEDURE, procedure_problem
from confidently.errors import ConfigError
from confidently.models.registry import DEFAULT_MODEL

#: LoRA targets when ``target_modules`` is not given, by transformers ``model_type``: every attention
#: projection of the registry models (qwen2, gemma3_text, llama for SmolLM2). Other architectures get
#: PEFT's own default for their type.
DEFAULT_TARGET_MODULES: dict[str, tuple[str, ...]] = {
    model_type: ("q_proj", "k_proj", "v_proj", "o_proj") for model_type in ("qwen2", "gemma3_text", "gemma3", "llama")
}

#: The original checkpoint each registry model was converted from; written as the adapter's
#: ``base_model_name_or_path`` so vLLM and SageMaker know which base to serve it on.
HUB_IDS: dict[str, str] = {
    "qwen2.5-coder-0.5b-instruct": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "gemma-3-270m": "google/gemma-3-270m",
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
}


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class FinetuneConfig:
    """Settings of one LoRA fine-tuning run (see each field's ``metadata["help"]``).

    Examples
    --------
    >>> FinetuneConfig(model="gemma-3-270m", r=8, epochs=1).lora_alpha
    16
    >>> FinetuneConfig(validation_fraction=0.5, calibration_fraction=0.45)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    confidently.errors.ConfigError: validation_fraction (0.5) + calibration_fraction (0.45) must leave ...
    """

    # -- model and task ------------------------------------------------------------------------
    model: str = field(default=DEFAULT_MODEL, metadata=_help(
        "Base model: registry name, local folder, .gguf or hub id."))
    task: str = field(default="sentiment", metadata=_help("Built-in task name or a task .json file."))
    device: str | None = field(default=None, metadata=_help("auto (CUDA when present), cpu, cuda, cuda:1 …"))
    dtype: str | None = field(default=None, metadata=_help(
        "auto: float32 on CPU and CUDA (the adapter's calibration scores must not depend on their batch); "
        "bfloat16 trains faster on CUDA, not on CPU."))
    threads: int | None = field(default=None, metadata=_help(
        "CPU threads for the run (default: torch's choice, one per core). On a CPU busy with other jobs, "
        "1 can be several times faster: measured 3.3 s vs 7-41 s per batch on 2 shared cores."))

    # -- LoRA ----------------------------------------------------------------------------------
    r: int = field(default=8, metadata=_help("LoRA rank."))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling numerator (the update is scaled by alpha / r)."))
    lora_dropout: float = field(default=0.05, metadata=_help("Dropout on the LoRA branch's input."))
    target_modules: tuple[str, ...] | None = field(default=None, metadata=_help(
        "Module names to adapt, e.g. q_proj,v_proj; default: every attention projection of the "
        "registry models (q/k/v/o_proj), PEFT's default for other architectures."))

    # -- optimisation --------------------------------------------------------------------------
    learning_rate: float = field(default=2e-4, metadata=_help("Peak AdamW learning rate."))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay."))
    warmup_ratio: float = field(default=0.05, metadata=_help(
        "Share of the optimizer steps spent warming the learning rate up linearly; it then decays linearly to 0."))
    max_grad_norm: float = field(default=1.0, metadata=_help(
        "Gradients are clipped to this global norm (0: no clipping)."))
    epochs: float = field(default=1.0, metadata=_help(
        "Passes over the training rows (fractions allowed); ignored when max_steps is set."))
    max_steps: int | None = field(default=None, metadata=_help(
        "Optimizer steps to run; overrides epochs (the data is cycled when it asks for more than one pass)."))
    batch_size: int = field(default=8, metadata=_help("Examples per forward/backward pass."))
    grad_accum: int = field(default=2, metadata=_help(
        "Passes accumulated per optimizer step: an update sees batch_size x grad_accum examples."))
    bucket_batches: int = field(default=16, metadata=_help(
        "Length bucketing: the shuffled rows are cut into pools of this many batches, each pool is sorted "
        "by length and cut into batches (less padding), and the batches are shuffled again."))
    seed: int = field(default=0, metadata=_help("Seed of the splits, data order, LoRA initialisation and dropout."))

    # -- validation, early stopping, checkpoints -----------------------------------------------
    validation_fraction: float = field(default=0.1, metadata=_help(
        "Share of the training data held out for validation (early stopping, best checkpoint)."))
    max_validation: int = field(default=300, metadata=_help(
        "At most this many validation rows (each evaluation scores them all)."))
    eval_every: int | None = field(default=None, metadata=_help(
        "Evaluate on the validation rows every this many optimizer steps; default: 8 times per run."))
    patience: int = field(default=3, metadata=_help(
        "Stop after this many evaluations without a lower validation loss (0: never stop early)."))
    checkpoint_every: int = field(default=25, metadata=_help(
        "Save a resumable checkpoint every this many optimizer steps (and at every evaluation)."))

    # -- calibration and decision policy -------------------------------------------------------
    calibration_fraction: float = field(default=0.15, metadata=_help(
        "Share of the training data carved out for the calibrator when no calibration data is given."))
    calibrator: str = field(default="platt", metadata=_help("Calibration method fitted on the calibration split."))
    target_accuracy: float = field(default=0.95, metadata=_help(
        "Accuracy of automated predictions the policy's threshold is certified for, at --level confidence."))
    level: float = field(default=0.95, metadata=_help(
        "Confidence level of that guarantee (Learn-Then-Test, exact binomial tests)."))
    procedure: str = field(default=DEFAULT_PROCEDURE, metadata=_help(
        "How thresholds are tested for the certified one (same guarantee either way): fallback splits the "
        "1 - level error chance between two starting thresholds and goes on after a failure; fixed-sequence "
        "(the earlier rule) stops at the first failure."))
    alpha: float = field(default=0.1, metadata=_help(
        "Allowed miscoverage of the prediction sets fitted on the calibration split: each holds the true label "
        "with probability >= 1 - alpha (not LoRA's scaling, which is --lora-alpha)."))
    decision_rule: str = field(default="threshold", metadata=_help(
        "What the adapter's answers are decided by: threshold (the certified threshold) or prediction_set "
        "(automate when the prediction set holds only the answer)."))
    score_batch_size: int = field(default=16, metadata=_help(
        "Prompts per forward pass when scoring the calibration split."))

    def __post_init__(self) -> None:
        if self.target_modules is not None:
            self.target_modules = tuple(self.target_modules)
            if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
                raise ConfigError(f"target_modules must be non-empty module names; got {self.target_modules!r}")
        for name in ("r", "lora_alpha", "batch_size", "grad_accum", "bucket_batches", "max_validation",
                     "checkpoint_every", "score_batch_size"):
            _check_int(name, getattr(self, name), low=1)
        for name in ("max_steps", "eval_every", "threads"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low=1)
        _check_int("patience", self.patience, low=0)
        _check_int("seed", self.seed, low=0)
        for name, low, high in (("lora_dropout", 0.0, 0.9), ("weight_decay", 0.0, 1.0), ("warmup_ratio", 0.0, 0.5),
                                ("validation_fraction", 0.01, 0.5), ("calibration_fraction", 0.01, 0.5),
                                ("target_accuracy", 0.5, 1.0), ("level", 0.5, 0.9999), ("alpha", 0.001, 0.5)):
            _check_float(name, getattr(self, name), low, high)
        if problem := procedure_problem(self.procedure):
            raise ConfigError(problem)
        _check_float("learning_rate", self.learning_rate, 1e-7, 1.0)
        _check_float("max_grad_norm", self.max_grad_norm, 0.0, math.inf)
        if self.max_steps is None:
            _check_float("epochs", self.epochs, 0.01, 1000.0)
        if self.validation_fraction + self.calibration_fraction >= 0.9:
            raise ConfigError(
                f"validation_fraction ({self.validation_fraction}) + calibration_fraction "
                f"({self.calibration_fraction}) must leave training data: their sum must be below 0.9"
            )
        from confidently.decision.decisions import DECISION_RULES
        from confidently.calibration import CALIBRATORS

        if self.decision_rule not in DECISION_RULES:
            raise ConfigError(f"decision_rule must be one of {', '.join(DECISION_RULES)}; got {self.decision_rule!r}")

        if self.calibrator.split("+")[-1] not in CALIBRATORS:
            raise ConfigError(f"calibrator {self.calibrator!r} is unknown; choose one of {', '.join(CALIBRATORS)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = None if self.target_modules is None else list(self.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown fine-tuning settings: {', '.join(unknown)}")
        return cls(**data)

    @staticmethod
    def help(name: str) -> str:
        """The help text of field ``name`` (for command-line options)."""
        return next(f.metadata["help"] for f in fields(FinetuneConfig) if f.name == name)


def _check_int(name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}; got {value!r}")


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise ConfigError(f"{name} must be a number in [{low:g}, {high:g}]; got {value!r}")
