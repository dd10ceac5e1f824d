"""``confidently finetune`` (train a calibrated LoRA adapter) and ``compare`` (base vs fine-tuned)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from collections.abc import Sequence
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from confidently.cli.app import app, console, err_console
from confidently.cli.options import (DEFAULTS, Certification, CertificationOpt, DecisionRule, DeviceOpt, DtypeOpt,
                                     ModelOpt, TaskOpt)
from confidently.finetune.config import FinetuneConfig

_DEFAULTS = {f.name: f.default for f in fields(FinetuneConfig)}


def _option(name: str, *flags: str, **extra: Any) -> Any:
    """A typer option whose help is the config field's (written once, in FinetuneConfig)."""
    return typer.Option(*(flags or (f"--{name.replace('_', '-')}",)), help=FinetuneConfig.help(name), **extra)


TextColumnOpt = Annotated[str, typer.Option("--text-column", help="Column holding the text.")]
LabelColumnOpt = Annotated[str, typer.Option("--label-column", help="Column holding the label.")]
SplitSeedOpt = Annotated[Optional[int], typer.Option(
    "--split-seed", help="DATA is a full dataset: split it like `confidently data split --seed S` (deduplicated, "
    "stratified, --fractions); finetune trains on the train part and calibrates on the calibration part, compare "
    "uses the test part. Give both commands the same seed and fractions.")]
FractionsOpt = Annotated[str, typer.Option("--fractions", help="Train, calibration and test shares for --split-seed.")]
ThreadsOpt = Annotated[Optional[int], _option("threads", min=1)]


def _load(path: Path, labels: Sequence[str], text_column: str, label_column: str):
    from confidently.data import load_dataset

    return load_dataset(path, text_column=text_column, label_column=label_column, labels=labels,
                        require_labels=True)


def _split(dataset, seed: int, fractions: str):
    from confidently.data import split_dataset
    from confidently.data.splits import parse_fractions

    return split_dataset(dataset, fractions=parse_fractions(fractions), seed=seed)


def _config(**settings: Any) -> FinetuneConfig:
    """The run's settings; a value out of range is a usage error (exit 2), found before any data loads."""
    from confidently.errors import ConfigError

    try:
        return FinetuneConfig(**settings)
    except ConfigError as error:
        raise typer.BadParameter(str(error)) from None


@app.command()
def finetune(
    data: Annotated[Path, typer.Option("--data", "-d", exists=True, help="Labelled training data (never the test split).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Adapter folder to write, e.g. adapters/NAME.")],
    model: ModelOpt = DEFAULTS["model"],
    task: TaskOpt = DEFAULTS["task"],
    calibration_data: Annotated[Optional[Path], typer.Option(
        "--calibration-data", exists=True, help="Labelled rows for the calibrator and policy; default: carved from --data.")] = None,
    split_seed: SplitSeedOpt = None,
    fractions: FractionsOpt = "0.7,0.15,0.15",
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    r: Annotated[int, _option("r", "--r", min=1)] = _DEFAULTS["r"],
    lora_alpha: Annotated[int, _option("lora_alpha", min=1)] = _DEFAULTS["lora_alpha"],
    lora_dropout: Annotated[float, _option("lora_dropout")] = _DEFAULTS["lora_dropout"],
    target_modules: Annotated[Optional[str], _option("target_modules")] = None,
    learning_rate: Annotated[float, _option("learning_rate", "--lr", "--learning-rate")] = _DEFAULTS["learning_rate"],
    epochs: Annotated[float, _option("epochs")] = _DEFAULTS["epochs"],
    max_steps: Annotated[Optional[int], _option("max_steps", min=1)] = None,
    batch_size: Annotated[int, _option("batch_size", "--batch-size", "-b", min=1)] = _DEFAULTS["batch_size"],
    grad_accum: Annotated[int, _option("grad_accum", min=1)] = _DEFAULTS["grad_accum"],
    validation_fraction: Annotated[float, _option("validation_fraction")] = _DEFAULTS["validation_fraction"],
    calibration_fraction: Annotated[float, _option("calibration_fraction")] = _DEFAULTS["calibration_fraction"],
    eval_every: Annotated[Optional[int], _option("eval_every", min=1)] = None,
    patience: Annotated[int, _option("patience", min=0)] = _DEFAULTS["patience"],
    checkpoint_every: Annotated[int, _option("checkpoint_every", min=1)] = _DEFAULTS["checkpoint_every"],
    calibrator: Annotated[str, _option("calibrator")] = _DEFAULTS["calibrator"],
    target_accuracy: Annotated[float, _option("target_accuracy")] = _DEFAULTS["target_accuracy"],
    certification: Annotated[Certification, _option("procedure", "--certification")] = Certification.fallback,
    alpha: Annotated[float, _option("alpha")] = _DEFAULTS["alpha"],
    decision_rule: Annotated[DecisionRule, _option("decision_rule")] = DecisionRule.threshold,
    seed: Annotated[int, _option("seed", min=0)] = _DEFAULTS["seed"],
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run whose checkpoint is in "
                                         "OUT.checkpoint/ (same data and settings).")] = False,
) -> None:
    """Fine-tune a LoRA adapter on the task's own prompt, then calibrate it and certify a threshold.

    The training prompt is exactly the one scoring uses and the target is each label's first word, so
    the adapter is scored by the same code path as the base model. Validation rows carved from the
    training data choose the best step and stop training early; the calibrator and the policy are fitted
    on --calibration-data (or rows carved from --data). OUT gets adapter_model.safetensors +
    adapter_config.json (PEFT: vLLM and SageMaker load them unchanged), calibrator.json, policy.json,
    conformal.json (prediction sets at --alpha) and manifest.json; it is replaced only once complete. Ctrl-C saves a checkpoint: rerun with --resume.
    A task whose file lists a prompt ensemble trains on every prompt (each training text asked each way),
    and the ensemble's combiner, fitted on every prompt's class masses, is the adapter's calibrator.

    Example: `confidently finetune --data splits/train.jsonl --model gemma-3-270m --out adapters/sentiment`
    """
    from confidently.finetune import finetune as run
    from confidently.tasks.task import get_task

    config = _config(
        model=model, task=task, device=device, dtype=dtype, threads=threads, r=r, lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=None if target_modules is None else tuple(m.strip() for m in target_modules.split(",")),
        learning_rate=learning_rate, epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
        validation_fraction=validation_fraction, calibration_fraction=calibration_fraction, eval_every=eval_every,
        patience=patience, checkpoint_every=checkpoint_every, calibrator=calibrator, target_accuracy=target_accuracy,
        procedure=certification.value, alpha=alpha, decision_rule=decision_rule.value, seed=seed)
    labels = get_task(task).label_names
    train = _load(data, labels, text_column, label_column)
    calibration = None if calibration_data is None else _load(calibration_data, labels, text_column, label_column)
    if split_seed is not None:
        splits = _split(train, split_seed, fractions)
        train, calibration = splits.train, calibration if calibration is not None else splits.calibration
    err_console.print(f"[dim]loading {escape(model)}…[/]")
    result = run(train, out, config, calibration=calibration, resume=resume)
    validation, calibrated = result.manifest["validation"], result.manifest["calibration"]
    console.print(f"[bold]adapter:[/] {result.path.resolve()}")
    console.print(f"trained {validation['steps_run']}/{result.training.total_steps} steps "
                  f"({'stopped early, ' if validation['stopped_early'] else ''}best at step {validation['best_step']}) "
                  f"at {result.training.examples_per_second:.2f} examples/s")
    console.print(f"validation (n={validation.get('n')}): loss {validation.get('loss', float('nan')):.4f}, "
                  f"accuracy {_validation_accuracy(validation)}")
    ece = calibrated["ece_intervals"]
    console.print(f"calibration ({calibrated['method']}): ECE raw {_ece_text(ece['raw'])} → cross-fitted "
                  f"{_ece_text(ece['cross_fitted'])} ({ece['raw']['how']}); policy: "
                  f"{calibrated['certificate']['reason']}")
    console.print(_decision_line(result.path))


def _validation_accuracy(validation: dict) -> str:
    """The validation accuracy with its exact 95% interval: the validation part is a small carve-out of the data."""
    from confidently.decision.exact_share import ExactShare

    n, accuracy = validation.get("n"), validation.get("accuracy")
    return "not measured" if not n or accuracy is None else ExactShare.of(accuracy, n).text()


def _ece_text(ece: dict) -> str:
    return f"{ece['value']:.4f} [{ece['low']:.4f}, {ece['high']:.4f}]"


def _decision_line(folder: Path) -> str:
    """How the adapter's bundle decides, and what that promises, as :func:`~confidently.decision.decisions.decide`
    states it for every answer."""
    import numpy as np

    from confidently.bundle.bundle import read_bundle
    from confidently.cli.scoring import rule_text
    from confidently.decision.decisions import decide

    bundle = read_bundle(folder)
    labels = bundle.task.label_names
    rule = decide(np.zeros((0, len(labels))), labels=labels, policy=bundle.policy,
                  prediction_sets=bundle.prediction_sets, rule=bundle.decision_rule)
    return f"decision rule: {rule_text(rule.decided_by, rule.threshold)}; guarantee: {rule.guarantee}"


@app.command()
def compare(
    data: Annotated[Path, typer.Option("--data", "-d", exists=True, help="Held-out labelled test rows (or a full dataset "
                                       "with --split-seed).")],
    adapter: Annotated[Path, typer.Option("--adapter", exists=True, file_okay=False, help="Adapter folder made by `confidently finetune`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for report.html, metrics.json, summary.md.")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Base model; default: the adapter "
                                                 "manifest's base model.")] = None,
    calibration_data: Annotated[Optional[Path], typer.Option(
        "--calibration-data", exists=True, help="Labelled rows to fit Platt/isotonic on for both models; default: the "
        "calibration part with --split-seed, else cross-fitted on the test rows.")] = None,
    split_seed: SplitSeedOpt = None,
    fractions: FractionsOpt = "0.7,0.15,0.15",
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Prompts per forward pass.")] = 16,
    n_resamples: Annotated[int, typer.Option("--n-resamples", min=0, help="Bootstrap resamples per interval.")] = 1000,
    target_accuracy: Annotated[float, typer.Option("--target-accuracy", min=0.5, max=1.0,
                                                   help="Accuracy of automated predictions each model's threshold is "
                                                        "certified for, with 95% confidence over the calibration "
                                                        "rows.")] = 0.95,
    certification: CertificationOpt = Certification.fallback,
    review_cost: Annotated[float, typer.Option(min=0, help="Cost of sending one prediction to review.")] = 1.0,
    error_cost: Annotated[float, typer.Option(min=0, help="Cost of one automated mistake.")] = 10.0,
    minutes_per_review: Annotated[float, typer.Option(min=0.01, help="Minutes a person spends on one reviewed "
                                                      "item (cost view).")] = 2.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and the cross-fitting folds.")] = 0,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Compare the base model with a fine-tuned adapter on the same held-out test rows.

    One base model is loaded and the adapter switched on and off on it. Reports accuracy, ECE, Brier,
    AUROC, and the decisions of each model's certified threshold (chosen on the calibration rows) and
    of fixed thresholds 0.80/0.90/0.95 with their cost per 10,000 items (automated, mistakes, review
    hours, cost), for raw, Platt and isotonic scores, each difference with a paired-bootstrap 95%
    interval; per-category and per-domain slices, and on neutral texts the predicted-positive rate per
    domain. DATA must be rows the adapter never saw: a test file, or the full dataset with the
    --split-seed used for training. Rows whose texts the adapter's bundle saw (its seen_texts.json) are
    warned about before the model loads, and the figures `score` gives (raw accuracy; the adapter's own
    calibrated accuracy and set coverage) are stated again on the rows it never saw, with n and exact
    intervals (metrics.json: unseen_by_adapter). Finished scores are cached in OUT/score-cache.

    Example: `confidently compare --data splits/test.jsonl --calibration-data splits/calibration.jsonl --adapter adapters/sentiment --out runs/compare`
    """
    from confidently.backends.transformers_backend import TransformersBackend
    from confidently.workflows.comparison import CompareConfig, compare as run
    from confidently.finetune.report import write_comparison
    from confidently.bundle.bundle import read_bundle
    from confidently.finetune.report import headline_cards, how_lines
    from confidently.finetune.run import torch_threads

    bundle = read_bundle(adapter)  # every file's hash, before anything loads
    task, labels = bundle.task.name, bundle.task.label_names
    test = _load(data, labels, text_column, label_column)
    calibration = None if calibration_data is None else _load(calibration_data, labels, text_column, label_column)
    if split_seed is not None:
        splits = _split(test, split_seed, fractions)
        test, calibration = splits.test, calibration if calibration is not None else splits.calibration
    seen_note = _seen_test_rows(bundle, test)  # before the model loads
    base = model or bundle.model.name
    err_console.print(f"[dim]loading {escape(str(base))}…[/]")
    backend = TransformersBackend(base, device=device, dtype=dtype, console=err_console)
    with torch_threads(threads):
        result = run(test, adapter, backend=backend, calibration=calibration, cache_dir=out / "score-cache",
                     config=CompareConfig(n_resamples=n_resamples, seed=seed, target_accuracy=target_accuracy,
                                          procedure=certification.value,
                                          batch_size=batch_size, review_cost=review_cost, error_cost=error_cost,
                                          minutes_per_review=minutes_per_review))
    result.metadata["data"] = str(data) if split_seed is None else f"{data} (test part, split seed {split_seed})"
    if seen_note:
        result.metadata["test rows the adapter saw"] = seen_note
    paths = write_comparison(result, out, title=f"confidently: base vs fine-tuned ({task})")
    console.print(f"[bold]report:[/] {paths['report'].resolve()}")
    for name, value in headline_cards(result).items():
        console.print(f"{name}: {value}")
    for line in how_lines(result):
        console.print(line)
    if calibration is None:
        console.print("no threshold is certified without calibration rows: give --calibration-data (e.g. the rows "
                      "finetune calibrated on) or --split-seed; the decisions above use a fixed threshold")



def _seen_test_rows(bundle, test) -> str | None:
    """Warn (one line) when test rows have texts the adapter bundle was trained, validated or calibrated on
    (its seen_texts.json); return the warning for the report, None when none or when the bundle keeps no record."""
    from confidently.bundle.seen import SeenTexts

    record = SeenTexts.from_bundle(bundle)
    overlap = None if record is None else record.overlap(test.texts)
    if overlap is None or not overlap.n_seen:
        return None
    line = overlap.warning(bundle.folder, "the fine-tuned model's figures are partly in-sample; compare on rows it "
                                          "never saw")
    err_console.print(escape(line), style="yellow", soft_wrap=True)
    return line
