"""One fine-tuning run end to end: split, train, calibrate, save the adapter folder.

:func:`finetune` is the API the command line and the demo call; it returns the saved folder's
path and manifest. The base model is the backend's (pass one to share it with scoring); the adapter
is trained on it in place and removed afterwards, so one model copy is ever in memory.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from confidently.backends.transformers_backend import TransformersBackend
from confidently.calibration import SmallSampleWarning, cross_fit_predict, make_calibrator
from confidently.calibration.ensemble import PromptCombiner, cross_fit_ensemble
from confidently.scoring.classifier import Classifier
from confidently.tasks.task import get_task
from confidently.data import Dataset
from confidently.bundle.bundle import CONFORMAL_FILE, ModelIdentity
from confidently.errors import UnfinishedRunError
from confidently.finetune.artifacts import peft_config_dict, write_adapter
from confidently.bundle.seen import SEEN_FILE, seen_payload
from confidently.feedback.payloads import production_payloads
from confidently.finetune.checkpoint import checkpoint_dir
from confidently.finetune.config import HUB_IDS, FinetuneConfig
from confidently.finetune.data import (TrainingSplits, check_labels, encode_every_prompt, every_prompt_targets,
                                      make_splits)
from confidently.finetune.model import TRAINING_ADAPTER, trainable_state, training_adapter
from confidently.finetune.trainer import Trainer, TrainingResult
from confidently.decision.conformal import ConformalPredictor
from confidently.metrics import metric_function
from confidently.metrics.evaluate import metric_result
from confidently.decision.policy import DecisionPolicy
from confidently.decision.thresholds import certify_threshold

#: Settings that do not change what is learned, so a checkpoint may be resumed with other values.
_RESUMABLE_CHANGES = ("device", "threads", "checkpoint_every", "score_batch_size", "alpha", "decision_rule",
                      "procedure")
#: Folds of the cross-fitting that chooses the policy's threshold on the calibration split.
_POLICY_FOLDS = 5


@dataclass(frozen=True)
class FinetuneResult:
    """A finished run: the adapter folder, its manifest, the training details, the rows each part
    used, and the calibration rows' raw probabilities under the trained adapter (before saving)."""

    path: Path
    manifest: dict[str, Any]
    training: TrainingResult
    splits: TrainingSplits
    calibration_probs: np.ndarray


def finetune(train: Dataset, out: str | Path, config: FinetuneConfig | None = None, *,
             calibration: Dataset | None = None, backend: TransformersBackend | None = None,
             resume: bool = False, progress: bool = True,
             on_step: Callable[[int], None] | None = None) -> FinetuneResult:
    """Fine-tune a LoRA adapter on ``train`` and save it, calibrated, to the folder ``out``.

    When the task has a prompt ensemble, every training (and validation) text is asked each way the task
    asks, and the adapter is calibrated by the ensemble's combiner on every prompt's class masses (as
    ``evaluate --prompts`` calibrates one; ``config.calibrator`` is then not used).

    Parameters
    ----------
    train : labelled rows; validation rows (and calibration rows, when ``calibration`` is None) are
        carved out of it. Never pass the test split.
    out : the adapter folder to write (replaced as a whole, only once complete).
    config : settings; defaults to :class:`FinetuneConfig`'s.
    calibration : labelled rows to fit the calibrator and certify the policy's threshold on.
    backend : a loaded :class:`TransformersBackend` of ``config.model`` to train on (shared, no copy).
    resume : continue from ``<out>.checkpoint/`` left by an interrupted run.
    progress : show a progress bar (loss, examples/s).
    on_step : called with the step number after every optimizer step.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    DataError
        Unlabelled data, labels the task does not know (all named), too few rows, or calibration
        texts that also occur in the training data.
    ArtifactError
        The adapter could not be written (the previous one at ``out`` is kept), or the checkpoint
        belongs to another run.

    Examples
    --------
    >>> from confidently.data import generate_sentiment, split_dataset
    >>> splits = split_dataset(generate_sentiment(2000, seed=0))  # doctest: +SKIP
    >>> result = finetune(splits.train, "adapters/demo", FinetuneConfig(model="gemma-3-270m"),
    ...                   calibration=splits.calibration)  # doctest: +SKIP
    """
    config = config or FinetuneConfig()
    out = Path(out)
    # the data is checked and split before the model loads: a file too small costs no load
    task = get_task(config.task)
    check_labels(train, task, role="training")
    if calibration is not None:
        check_labels(calibration, task, role="calibration")
    splits = make_splits(train, calibration, config)
    backend = backend or TransformersBackend(config.model, device=config.device, dtype=config.dtype)
    classifier = Classifier(task=config.task, backend=backend, batch_size=config.score_batch_size)
    asked = classifier.prompt_classifiers  # the task's prompt, or every prompt of its ensemble
    targets = every_prompt_targets(classifier, splits.train.texts)
    answers = [target.to_dict(prompt.task) for target, prompt in zip(targets, asked)]
    identity = {
        "training_data_sha256": train.sha256(),
        "calibration_data_sha256": None if calibration is None else calibration.sha256(),
        "settings": {k: v for k, v in config.to_dict().items() if k not in _RESUMABLE_CHANGES},
        "base_weights_id": backend.weights_id,
        "answer_targets": answers[0] if len(answers) == 1 else answers,
    }
    checkpoint = checkpoint_dir(out)
    if checkpoint.exists() and not resume:
        raise UnfinishedRunError(f"{checkpoint} holds an unfinished run: pass --resume to continue it, "
                                  "or delete it to start over")
    with torch_threads(config.threads), training_adapter(backend, config, config.seed) as model:
        trainer = Trainer(model, encode_every_prompt(classifier, splits.train, targets),
                          encode_every_prompt(classifier, splits.validation, targets), config,
                          verbalizers=[prompt.verbalizer for prompt in asked], pad_id=backend.pad_id,
                          cache_kwarg=backend._cache_kwarg, checkpoint=checkpoint, identity=identity,
                          show_progress=progress)
        training = trainer.run(resume=resume, on_step=on_step)
        ensemble = len(asked) > 1  # every prompt's class masses are kept for the ensemble's combiner
        calibration_scores = classifier.score(splits.calibration.texts, hidden=ensemble)
        calibration_probs = calibration_scores.probs
        weights = trainable_state(model)
        adapter_config = peft_config_dict(model.peft_config[TRAINING_ADAPTER],
                                          HUB_IDS.get(backend.model_name, backend.model_name))
    y_calibration = splits.calibration.label_indices(classifier.labels)
    calibrator, policy, prediction_sets, calibration_summary = fit_calibration(
        calibration_probs, y_calibration, config, masses=calibration_scores.hidden,
        truncated=calibration_scores.truncated)
    metadata = {
        "labels": answers[0],
        **({"prompts_trained": {"n_prompts": len(asked), "answer_targets": answers,
                                "how": "every training and validation text asked each way the ensemble asks"}}
           if ensemble else {}),
        "hyperparameters": {**config.to_dict(), "target_modules_used": adapter_config["target_modules"],
                            "total_steps": training.total_steps, "eval_every": trainer.schedule.eval_every,
                            "device": backend.device, "dtype": backend.dtype},
        "training_data_sha256": identity["training_data_sha256"],
        "splits": _split_summary(splits, config),
        "validation": {**training.validation, "best_step": training.progress.best_step,
                       "steps_run": training.progress.step, "stopped_early": training.progress.stopped_early,
                       "history": training.progress.history},
        "calibration": calibration_summary,
        "training": {"train_seconds": training.progress.train_seconds,
                     "examples_per_second": training.examples_per_second,
                     "examples_seen": training.progress.examples_seen},
    }
    base = ModelIdentity(backend.model_name, backend.name, backend.weights_id, backend.dtype, None)
    payloads = production_payloads(
        splits.calibration.texts, y_calibration, calibration_probs, calibration_scores.other_mass,
        task=classifier.task, chat=classifier.chat, calibrator=calibrator, policy=policy,
        scored_with={**base.to_dict(), "adapter_sha256": "this bundle's adapter weights"},
        source=f"calibration split ({splits.calibration_source}), {len(splits.calibration)} rows", seed=config.seed,
        hidden=calibration_scores.hidden, truncated=calibration_scores.truncated, prediction_sets=prediction_sets,
        decision_rule=config.decision_rule)
    bundle = write_adapter(out, weights=weights, adapter_config=adapter_config, model=base, task=classifier.task,
                           chat=classifier.chat, calibrator=calibrator, policy=policy,
                           metadata={**metadata, "decision_rule": config.decision_rule},
                           fitted_on={"rows_sha256": splits.calibration.sha256(), "n_rows": len(splits.calibration),
                                      "split": "calibration", "source": splits.calibration_source},
                           extra_json={**payloads.json, CONFORMAL_FILE: prediction_sets.to_dict(),
                                       SEEN_FILE: seen_payload({"calibration": splits.calibration.texts,
                                                                "training": splits.train.texts,
                                                                "validation": splits.validation.texts})},
                           extra_files=payloads.files)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return FinetuneResult(out, bundle.manifest, training, splits, calibration_probs)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` CPU threads (None: leave torch's setting), restoring the previous count."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_calibration(probs: np.ndarray, y: np.ndarray, config: FinetuneConfig, *, masses: np.ndarray | None = None,
                    truncated: np.ndarray | None = None):
    """The calibrator (fitted on every calibration row), a certified decision policy and prediction sets.

    The policy's threshold is certified, and the split-conformal (LAC) sets fitted, on out-of-fold
    calibrated scores (5-fold cross-fitting), so both are chosen on scores from calibrators that did
    not see those rows. With ``masses`` (every prompt's class masses, a prompt ensemble's) the calibrator
    is the ensemble's combiner, fitted and cross-fitted as ``evaluate`` fits it, instead of ``config.calibrator``.
    ``truncated`` rows (cut to fit the context) count as reviewed at every threshold, as they will be.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        if masses is None:
            method = config.calibrator
            calibrator = make_calibrator(method).fit(probs, y)
            out_of_fold = cross_fit_predict(method, probs, y, n_splits=_POLICY_FOLDS, seed=config.seed)
        else:
            method, k = PromptCombiner.name, probs.shape[1]
            calibrator = PromptCombiner(n_splits=_POLICY_FOLDS, seed=config.seed).fit(masses, y, n_classes=k)
            out_of_fold = cross_fit_ensemble(masses, y, n_classes=k, n_splits=_POLICY_FOLDS, seed=config.seed)
    certificate = certify_threshold(out_of_fold.max(1), out_of_fold.argmax(1) == y,
                                    target_accuracy=config.target_accuracy, level=config.level,
                                    procedure=config.procedure, never_automated=truncated)
    ece = metric_function("ece")
    summary = {
        "n": int(y.size), "method": method,
        "accuracy": float(metric_function("accuracy")(probs[None], y[None])[0]),
        "ece_raw": float(ece(probs[None], y[None])[0]),
        "ece_cross_fitted": float(ece(out_of_fold[None], y[None])[0]),
        # The two values above are on the rows as they are; a calibration split is small, so each also gets the
        # bias-corrected value with its 95% bootstrap interval, as evaluate reports ECE.
        "ece_intervals": {name: _ece_interval(scores, y, config.seed)
                          for name, scores in (("raw", probs), ("cross_fitted", out_of_fold))},
        "certificate": certificate.to_dict(),
    }
    prediction_sets = ConformalPredictor(config.alpha).fit(out_of_fold, y)
    summary["prediction_sets"] = {"alpha": config.alpha, "score": prediction_sets.score,
                                  "guarantee": prediction_sets.guarantee,
                                  "mean_set_size_cross_fitted": float(prediction_sets.predict_set(out_of_fold)
                                                                      .sum(axis=1).mean())}
    return calibrator, DecisionPolicy.from_certificate(certificate), prediction_sets, summary


def _ece_interval(probs: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    found = metric_result("ece", probs, y, n_resamples=1000, seed=seed)
    return {"value": found.value, "low": found.ci_low, "high": found.ci_high, "sample_value": found.sample_value,
            "how": f"{found.n} rows, 20 equal-width bins; bootstrap bias-corrected value, basic 95% interval, "
                   "1000 resamples"}


def _split_summary(splits: TrainingSplits, config: FinetuneConfig) -> dict[str, Any]:
    return {"carving_seed": config.seed, "sizes": splits.sizes(), "calibration_source": splits.calibration_source,
            "validation_sha256": splits.validation.sha256(), "calibration_sha256": splits.calibration.sha256()}
