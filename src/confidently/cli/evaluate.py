"""The main jobs: ``evaluate`` (your data) and ``demo`` (the original study on generated data)."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from confidently.cli.app import app, console
from confidently.cli.options import (DEFAULTS, AdapterModelOpt, ApiKeyOpt, BackendOpt, BaseUrlOpt, BatchOpt,
                                     Certification, CertificationOpt, DecisionRuleOpt, DeviceOpt, DtypeOpt, MaxTextCharsOpt, MaxTextTokensOpt, ModelOpt,
                                     SamplesOpt, ScorerOpt, TaskOpt, TemperatureOpt, TokenizerOpt, build_classifier,
                                     scorer_spec)

DataOpt = Annotated[Optional[Path], typer.Option("--data", "-d", exists=True,
                                                help="Labelled data; split into calibration/test.")]
CalibrationDataOpt = Annotated[Optional[Path], typer.Option(
    exists=True, help="Use this calibration split instead of splitting --data.")]
TestDataOpt = Annotated[Optional[Path], typer.Option(exists=True, help="Use this test split instead of splitting --data.")]
CalibrationFractionOpt = Annotated[float, typer.Option(
    help="Share of --data used to calibrate; the rest is the test split.")]
TextColumnOpt = Annotated[str, typer.Option(help="Column holding the text.")]
LabelColumnOpt = Annotated[str, typer.Option(help="Column holding the label.")]


def _known_methods(methods: str) -> str:
    """Refuse an unknown calibrator name on the command line, before anything is scored (it used to be
    skipped silently, with a note only in the report)."""
    from confidently.calibration.registry import CALIBRATORS

    names = [m.strip() for m in methods.split(",") if m.strip()]
    if not names:
        raise typer.BadParameter("give at least one calibration method, e.g. platt,isotonic")
    for name in names:
        if unknown := [step for step in name.split("+") if step not in CALIBRATORS]:
            within = f" in {name!r}" if "+" in name else ""
            raise typer.BadParameter(f"unknown calibration method {unknown[0]!r}{within}; choose from "
                                     f"{', '.join(CALIBRATORS)} ('a+b' stacks a under b)")
    return methods


MethodsOpt = Annotated[str, typer.Option(callback=_known_methods,
                                         help="Calibrators to compare, comma-separated ('a+b' stacks a under b).")]
ReviewCostOpt = Annotated[float, typer.Option(min=0, help="Cost of sending one prediction to human review.")]
ErrorCostOpt = Annotated[float, typer.Option(min=0, help="Cost of one automated mistake.")]
TargetOpt = Annotated[float, typer.Option(min=0.5, max=1.0, help="Accuracy of automated predictions the threshold "
                                          "is certified for, with 95% confidence over the calibration sample.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of every split, subset, bootstrap and sampled answer.")]


class ShotSelection(str, Enum):
    """How ``--shots`` examples are chosen (:mod:`confidently.tasks.shots`, :mod:`confidently.tasks.nearest`)."""

    balanced = "balanced"
    nearest = "nearest"
AlphaOpt = Annotated[float, typer.Option(min=0.001, max=0.5, help="Prediction sets hold the true label with "
                                         "probability at least 1 - alpha.")]
MinutesOpt = Annotated[float, typer.Option(min=0.01, help="Minutes a person spends on one reviewed item (cost view).")]

ConformalByOpt = Annotated[Optional[str], typer.Option(
    help="Data column to fit per-slice prediction sets on (coverage then holds within each of its values).")]


def _config(methods: str, review_cost: float, error_cost: float, target_accuracy: float, seed: int, repeats: int,
            alpha: float, conformal_by: Optional[str], minutes_per_review: float, decision_rule: str = "threshold",
            certification: Certification = Certification.fallback):
    from confidently.workflows.evaluation import EvaluationConfig

    return EvaluationConfig(methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
                            review_cost=review_cost, error_cost=error_cost, target_accuracy=target_accuracy,
                            seed=seed, budget_repeats=repeats, alpha=alpha, conformal_by=conformal_by,
                            minutes_per_review=minutes_per_review, decision_rule=decision_rule,
                            procedure=certification.value)


def _print_headline(result, started: float) -> None:
    from confidently.report.evaluation import (automated_text, deciding_guarantee, format_metric, projection_text,
                                              set_coverage_text)

    h = result.evaluation.headline()
    console.print(f"[bold]report:[/] {result.paths['report'].resolve()}")
    cfg = result.evaluation.config
    console.print(f"accuracy (test, n={h['n_test']}; value [95% bootstrap interval, {cfg.n_resamples} resamples]): "
                  f"raw {format_metric(h['accuracy_raw'])} → {h['best_method']} "
                  f"{format_metric(h['accuracy_calibrated'])}")
    console.print(f"ECE, {cfg.n_bins} equal-width bins, bias-corrected (test): raw {format_metric(h['ece_raw'])} → "
                  f"{h['best_method']} {format_metric(h['ece_calibrated'])}")
    on_test = h["policy_on_test"]
    if result.evaluation.policy.threshold is None:
        console.print(f"certified threshold at {result.evaluation.config.target_accuracy:.0%} accuracy: none "
                      "(why: see the note below)")
    else:
        console.print(f"certified threshold {result.evaluation.policy.threshold:.2f} (chosen on calibration data): "
                      f"automates {automated_text(on_test)} test rows")
    console.print(f"guarantee: {result.evaluation.policy.guarantee}")
    console.print(projection_text(result.evaluation))
    sets = h["prediction_sets"]
    console.print(f"prediction sets ({sets['name']}, {1 - sets['alpha']:.0%}): {set_coverage_text(sets)} of the "
                  f"test rows covered, {sets['mean_set_size_on_test']:.2f} labels per set on average")
    rule = h["set_rule_on_test"]
    console.print(f"set rule (automate single-label sets): automates {automated_text(rule)} test rows; automated "
                  f"errors {rule['automated_errors_share_of_all']:.1%} of all rows")
    console.print(f"the bundle decides by: [bold]{h['decision_rule']}[/]; an automate decision promises: "
                  f"{deciding_guarantee(result.evaluation)}")
    for note in result.evaluation.notes:
        console.print(f"[yellow]note:[/] {note}")
    bundle = result.paths["bundle"].parent
    console.print(f"[bold]calibration bundle:[/] {bundle.resolve()}  (use it: `confidently classify TEXT "
                  f"--calibration {bundle}`, `score FILE --calibration {bundle}`, `serve --calibration {bundle}`)")
    answers = {split: s.answers for split, s in (result.scores or {}).items() if s.answers is not None}
    if answers:
        from confidently.workflows.pipeline import describe_answers

        for split, summary in answers.items():
            console.print(f"answers ({split} split): {describe_answers(summary)}")
    console.print(f"[dim]done in {time.time() - started:.0f} s[/]")


def _load_splits(task, data, calibration_data, test_data, text_column, label_column, seed, calibration_fraction):
    """The calibration and test splits: the two files given, or --data split (stratified, no shared text).

    Read before the model loads (the labels come from ``task``), so a wrong column or a bad row costs no load.
    """
    from confidently.data import load_dataset
    from confidently.tasks.task import get_task
    from confidently.workflows.pipeline import check_evaluation_splits, split_for_evaluation

    labels = get_task(task).label_names
    load = lambda path: load_dataset(path, text_column=text_column, label_column=label_column,  # noqa: E731
                                     labels=labels, require_labels=True)
    if calibration_data is not None and test_data is not None:
        calibration, test = load(calibration_data), load(test_data)
        check_evaluation_splits(calibration, test, labels, how=f"{calibration_data} and {test_data}")
        return calibration, test
    full = load(data)
    calibration, test = split_for_evaluation(full, seed=seed, calibration_fraction=calibration_fraction)
    check_evaluation_splits(calibration, test, labels, fraction=calibration_fraction,
                            how=f"--calibration-fraction {calibration_fraction:g} of the {len(full)} rows of {data}")
    return calibration, test


#: What the demo classifies with the bundle it has just fitted: clear, mixed and neutral sentences.
DEMO_TEXTS = ("I love this movie!", "The worst meal I have ever had.", "The package arrived on Tuesday.",
              "Not bad at all, I would go back.")


def print_calibrated_examples(calibrated, texts=DEMO_TEXTS) -> None:
    """One line per text: raw answer (uncalibrated), calibrated answer and its decision."""
    from rich.table import Table

    from confidently.cli.scoring import rule_text

    predictions = calibrated.classify_many(list(texts))
    table = Table(title="classified with the calibration bundle just written")
    table.add_column("text", ratio=1)  # the text wraps; the answers stay on one line each
    for column in ("raw (uncalibrated)", "calibrated", "prediction set", "decision"):
        table.add_column(column, no_wrap=True)
    for p in predictions:
        table.add_row(p.text, f"{p.raw_label} {p.raw_confidence:.4f}", f"{p.label} {p.confidence:.4f}",
                      "-" if p.prediction_set is None else "{" + ", ".join(p.prediction_set) + "}", p.decision or "-")
    console.print(table)
    rule = calibrated.rule
    if rule.decided_by is not None:
        console.print(f"decision rule: {rule_text(rule.decided_by, rule.threshold)}; guarantee: {rule.guarantee}")


DEFAULT_METHODS = "platt,isotonic,temperature,histogram,beta,dirichlet,batch,batch+platt,contextual,contextual+platt"



def _require_data(data: Path | None, calibration_data: Path | None, test_data: Path | None) -> None:
    if data is None and (calibration_data is None or test_data is None):
        raise typer.BadParameter("give --data, or both --calibration-data and --test-data", param_hint="--data")
    if data is not None and (calibration_data is not None or test_data is not None):
        # one of them would be ignored without a word: --data is split only when no split files are given
        raise typer.BadParameter("give --data (split here), or --calibration-data and --test-data, not both",
                                 param_hint="--data")

@app.command()
def evaluate(
    data: DataOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the report and artifacts.")] = Path("runs/evaluate"),
    calibration_data: CalibrationDataOpt = None,
    test_data: TestDataOpt = None,
    calibration_fraction: CalibrationFractionOpt = 0.5,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    model: ModelOpt = DEFAULTS["model"],
    task: TaskOpt = DEFAULTS["task"],
    backend: BackendOpt = DEFAULTS["backend"],
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    batch_size: BatchOpt = DEFAULTS["batch_size"],
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: TokenizerOpt = None,
    adapter: AdapterModelOpt = None,
    methods: MethodsOpt = DEFAULT_METHODS,
    review_cost: ReviewCostOpt = 1.0,
    error_cost: ErrorCostOpt = 10.0,
    target_accuracy: TargetOpt = 0.95,
    certification: CertificationOpt = Certification.fallback,
    alpha: AlphaOpt = 0.1,
    conformal_by: ConformalByOpt = None,
    minutes_per_review: MinutesOpt = 2.0,
    decision_rule: DecisionRuleOpt = None,
    budget_repeats: Annotated[int, typer.Option(min=1, help="Random subsets per label budget.")] = 20,
    seed: SeedOpt = 42,
    max_text_tokens: MaxTextTokensOpt = None,
    max_text_chars: MaxTextCharsOpt = None,
    scorer: ScorerOpt = "logprob",
    samples: SamplesOpt = None,
    temperature: TemperatureOpt = None,
    probe: Annotated[bool, typer.Option(
        "--probe", help="Also fit a hidden-state probe (logistic regression on the model's final hidden state, "
                        "same forward pass; local models only); it ships when its cross-fitted log-loss wins.")] = False,
    shots: Annotated[int, typer.Option(
        min=0, help="Put this many class-balanced calibration rows into the prompt as worked examples (they are "
                    "left out of calibration; the test rows are never used).")] = 0,
    shot_selection: Annotated[ShotSelection, typer.Option(
        "--shot-selection",
        help="balanced: the same --shots class-balanced rows for every text, in the shared prefix (computed once). "
             "nearest: a pool of calibration rows (--shot-pool) is set aside and every text is asked with its "
             "own --shots most similar pool rows (TF-IDF cosine, class-balanced among the nearest); the examples "
             "are then paid per text. The bundle keeps the pool, so classify and serve pick the same examples.")
    ] = ShotSelection.balanced,
    shot_pool: Annotated[Optional[int], typer.Option(
        "--shot-pool", min=2, show_default=False,
        help="With --shot-selection nearest: calibration rows set aside as the shot pool (left out of "
             "calibration). [default: a quarter of the calibration rows, at least 4 x --shots, at most 256]")] = None,
    prompts: Annotated[Optional[Path], typer.Option(
        "--prompts", exists=True, dir_okay=False,
        help="Prompt ensemble: a JSON list (or JSON Lines file) of more prompts for the task, each "
             '`{"template": "... {text} ...", "words": {"<label>": ["<word>", ...]}}` (words optional); every '
             "prompt is scored and a fitted combiner of their class masses competes as the calibrator "
             "'ensemble'.")] = None,
) -> None:
    """Score labelled data, calibrate on one split, measure on the other, and write the report.

    Writes report.html (self-contained), metrics.json, summary.md, calibrators/, scores.parquet (raw_*
    and calibrated_* columns, prediction_set, decision), and makes OUT a calibration bundle:
    manifest.json (model weights, task, fitted rows, file hashes, decision rule), calibrator.json,
    policy.json (the chosen calibrator and its certified threshold, with its guarantee in words) and
    conformal.json (the prediction sets; --decision-rule prediction_set decides by them), for
    `classify`, `score` and `serve --calibration OUT`. The threshold and the sets are fitted on the
    calibration split; the test split only measures them, with a cost view per 10,000 items. Scores
    are cached in OUT/score-cache, so a rerun or a killed run does not score finished rows again.

    With `--scorer verbalized` or `--scorer consistency` the scores come from generated answers (for
    servers that return no logprobs); the bundle records the scorer, and every answer's outcome (ok,
    no label, no probability, refusal, empty, error) is counted in the output and the report.

    Example: `confidently evaluate --data reviews.jsonl --out runs/reviews --alpha 0.05 --conformal-by domain`
    (add `--probe` to let a hidden-state probe compete with the calibrators, `--shots 8` for a few-shot prompt (`--shot-selection nearest`: each text's own nearest examples),
    `--prompts prompts.jsonl` for a prompt ensemble;
    `confidently evaluate --data reviews.jsonl --scorer consistency --samples 8 --temperature 0.7` for a
    black-box scorer)
    """
    from confidently.workflows.pipeline import run_evaluate

    _require_data(data, calibration_data, test_data)
    spec = scorer_spec(scorer, samples, temperature, seed)
    _check_shots(shots, shot_selection, shot_pool, prompts, spec)
    if prompts is not None:  # the prompts file is read and checked before the model loads
        from confidently.tasks.task import get_task, read_prompts

        if probe:
            raise typer.BadParameter("--probe and --prompts both fit a combiner on the scoring pass's features; "
                                     "use one", param_hint="--prompts")
        task = read_prompts(prompts, get_task(task))
    started = time.time()
    calibration, test = _load_splits(task, data, calibration_data, test_data, text_column, label_column, seed,
                                     calibration_fraction)
    clf = build_classifier(model=model, task=task, backend=backend, device=device, dtype=dtype, batch_size=batch_size,
                           base_url=base_url, api_key=api_key, tokenizer=tokenizer, adapter=adapter,
                           max_text_tokens=max_text_tokens, max_text_chars=max_text_chars, scorer=spec)
    result = run_evaluate(clf, calibration, test, out,
                          config=_config(methods, review_cost, error_cost, target_accuracy, seed, budget_repeats,
                                         alpha, conformal_by, minutes_per_review,
                                         "threshold" if decision_rule is None else decision_rule.value, certification),
                          metadata={"data": str(data or f"{calibration_data} + {test_data}")}, probe=probe,
                          shots=shots, shot_selection=shot_selection.value, shot_pool=shot_pool)
    if clf.task.ensemble or shots:
        from confidently.files import read_json

        cost = read_json(result.paths["bundle"])["cost"]
        asked = (f"prompt ensemble: {cost['forward_passes_per_item']} prompts, one forward pass each per item"
                 if clf.task.ensemble else f"{shots} {shot_selection.value} shots")
        console.print(f"{asked}; {cost['tokens_past_prefix_per_item']:.0f} tokens per item past the cached prefixes "
                      f"({cost['prompt_tokens_per_item']:.0f} with them)")
    _print_headline(result, started)


def _check_shots(shots: int, selection: ShotSelection, pool: int | None, prompts: Path | None, spec) -> None:
    """Refuse shot options that do not go together, before any data or model is loaded."""
    if selection is ShotSelection.nearest and not shots:
        raise typer.BadParameter("nearest shots need --shots K (K examples per text)", param_hint="--shot-selection")
    if pool is not None and selection is not ShotSelection.nearest:
        raise typer.BadParameter("--shot-pool sets the nearest shots' pool; add --shot-selection nearest",
                                 param_hint="--shot-pool")
    if pool is not None and pool <= shots:
        raise typer.BadParameter(f"the pool must hold more rows than --shots ({shots}), got {pool}",
                                 param_hint="--shot-pool")
    if selection is ShotSelection.nearest and prompts is not None:
        raise typer.BadParameter("nearest shots work with one prompt, not a prompt ensemble: use "
                                 "--shot-selection balanced or drop --prompts", param_hint="--shot-selection")
    if selection is ShotSelection.nearest and spec.black_box:
        raise typer.BadParameter(f"nearest shots need the logprob scorer; the {spec.name} scorer asks its own "
                                 "question", param_hint="--shot-selection")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/demo"),
    n: Annotated[int, typer.Option(min=200, help="Rows of the generated dataset.")] = 10000,
    eval_size: Annotated[int, typer.Option(min=50, help="Stratified test rows to score.")] = 1000,
    model: ModelOpt = DEFAULTS["model"],
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    batch_size: BatchOpt = DEFAULTS["batch_size"],
    methods: MethodsOpt = DEFAULT_METHODS,
    review_cost: ReviewCostOpt = 1.0,
    error_cost: ErrorCostOpt = 10.0,
    target_accuracy: TargetOpt = 0.95,
    certification: CertificationOpt = Certification.fallback,
    alpha: AlphaOpt = 0.1,
    conformal_by: ConformalByOpt = "domain",
    minutes_per_review: MinutesOpt = 2.0,
    budget_repeats: Annotated[int, typer.Option(min=1, help="Random subsets per label budget.")] = 20,
    seed: SeedOpt = 42,
    finetune: Annotated[bool, typer.Option(
        "--finetune", help="Also fine-tune a LoRA adapter on the train split and compare it with the base model "
                           "(off by default: on 2 CPU cores an epoch takes far longer than the rest).")] = False,
    finetune_steps: Annotated[Optional[int], typer.Option(
        min=1, help="With --finetune: stop after this many optimizer steps (default: one epoch).")] = None,
) -> None:
    """The original write-up's study, done honestly, on data generated here (the README's main command).

    Shows the next-token table for "Knock knock.", classifies one sentence (uncalibrated), then
    generates the 8-category sentiment set, splits it with no shared text, scores the calibration
    split and a stratified test sample, calibrates, writes the full report and the calibration bundle
    into OUT, and ends by classifying a few sentences with that bundle (calibrated, with decisions).
    Takes about 40 minutes and 7 GB of disk on 2 CPU cores with the default model (README).

    Example: `confidently demo --out runs/demo` (add `--finetune --finetune-steps 200` for the LoRA stage)
    """
    from confidently.bundle.bundle import read_bundle
    from confidently.cli.scoring import print_classification, print_next_token
    from confidently.decision.calibrated import CalibratedClassifier
    from confidently.workflows.pipeline import run_demo

    started = time.time()
    clf = build_classifier(model=model, task="sentiment", backend="transformers", device=device, dtype=dtype,
                           batch_size=batch_size)
    print_next_token(clf.next_token("Knock knock.", top_k=12), "Knock knock.", model)
    print_classification(clf.labels, clf.classify("I love this movie!"))
    finetune_config = None
    if finetune:
        from confidently.finetune import FinetuneConfig

        finetune_config = FinetuneConfig(model=model, device=device, max_steps=finetune_steps, seed=seed)
    result = run_demo(out, clf=clf, n=n, eval_size=eval_size, seed=seed, finetune_config=finetune_config,
                      config=_config(methods, review_cost, error_cost, target_accuracy, seed, budget_repeats,
                                     alpha, conformal_by, minutes_per_review, certification=certification))
    _print_headline(result, started)
    if "compare_report" in result.paths:
        console.print(f"[bold]base vs fine-tuned:[/] {result.paths['compare_report'].resolve()}")
    # the bundle just written, as the table says (not a recalibrated version the folder may hold)
    print_calibrated_examples(CalibratedClassifier(clf, bundle=read_bundle(result.paths["bundle"].parent)))


@app.command("compare-scorers")
def compare_scorers_command(
    data: DataOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder: one evaluate run per scorer, scorers.md and scorers.json.")] = Path("runs/scorers"),
    scorers: Annotated[str, typer.Option(help="Scorers to compare, comma-separated.")] = "logprob,verbalized,consistency",
    calibration_data: CalibrationDataOpt = None,
    test_data: TestDataOpt = None,
    calibration_fraction: CalibrationFractionOpt = 0.5,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    model: ModelOpt = DEFAULTS["model"],
    task: TaskOpt = DEFAULTS["task"],
    backend: BackendOpt = DEFAULTS["backend"],
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    batch_size: BatchOpt = DEFAULTS["batch_size"],
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: TokenizerOpt = None,
    samples: Annotated[Optional[int], typer.Option(
        "--samples", min=1, show_default=False, help="consistency: sampled answers per text. [default: 5]")] = None,
    temperature: Annotated[Optional[float], typer.Option(
        "--temperature", min=0.001, max=5.0, show_default=False,
        help="consistency: sampling temperature (verbalized always decodes greedily). [default: 1]")] = None,
    methods: MethodsOpt = DEFAULT_METHODS,
    target_accuracy: TargetOpt = 0.95,
    certification: CertificationOpt = Certification.fallback,
    budget_repeats: Annotated[int, typer.Option(min=1, help="Random subsets per label budget.")] = 20,
    seed: SeedOpt = 42,
) -> None:
    """Compare the scorers (logprob, verbalized, consistency) side by side on the same rows.

    Runs `evaluate` once per scorer on the same calibration and test splits (OUT/<scorer>/: report and
    calibration bundle, usable with `--calibration OUT/<scorer>`), then prints and writes one table
    (OUT/scorers.md, OUT/scorers.json): accuracy, AUROC of the raw confidence, ECE before and after
    calibration, coverage of the certified threshold at --target-accuracy, model calls and generated
    tokens per item, rows without a usable answer, and scoring wall time; test-split figures with 95%
    bootstrap intervals. The model is loaded once.

    Example: `confidently compare-scorers --data reviews.jsonl --out runs/scorers --samples 5`
    """
    from confidently.workflows.scorer_comparison import compare_scorers

    _require_data(data, calibration_data, test_data)
    names = [name.strip() for name in scorers.split(",") if name.strip()]
    if not names or len(set(names)) != len(names):
        raise typer.BadParameter(f"give distinct scorer names, got {scorers!r}", param_hint="--scorers")
    specs = [scorer_spec(name, samples if name == "consistency" else None,
                         temperature if name == "consistency" else None, seed) for name in names]
    started = time.time()
    calibration, test = _load_splits(task, data, calibration_data, test_data, text_column, label_column, seed,
                                     calibration_fraction)
    clf = build_classifier(model=model, task=task, backend=backend, device=device, dtype=dtype, batch_size=batch_size,
                           base_url=base_url, api_key=api_key, tokenizer=tokenizer)
    config = _config(methods, 1.0, 10.0, target_accuracy, seed, budget_repeats, 0.1, None, 2.0,
                     certification=certification)
    compare_scorers(clf, specs, calibration, test, out, config=config,
                    metadata={"data": str(data or f"{calibration_data} + {test_data}")})
    console.print((out / "scorers.md").read_text(encoding="utf-8"), markup=False, soft_wrap=True)
    console.print(f"[bold]runs:[/] {out.resolve()}  (each scorer's report and bundle in its own folder)")
    console.print(f"[dim]done in {time.time() - started:.0f} s[/]")
