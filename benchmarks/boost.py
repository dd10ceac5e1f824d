"""Side by side on the same held-out rows: zero-shot, few-shot prompts, the hidden-state probe, a prompt ensemble.

Splits one labelled file 50/50 into calibration and test (``split_for_evaluation``, seed 42): every
configuration may use the calibration rows' labels (few-shot examples are drawn from them and then
left out of calibration) and is measured on the same test rows. Each prompt's scores of both splits
are cached under ``--cache`` (hidden states kept), so a rerun scores nothing again. Everything is
chosen on the calibration rows: the calibrator by cross-fitted log-loss
(:func:`confidently.workflows.evaluation.evaluate_scores`), the Learn-Then-Test threshold (95% confidence) on the
method's out-of-fold scores; the test rows only measure. The label-budget table refits each row's
method on random calibration subsets and certifies on the subset's own out-of-fold scores.

With ``--finetune-shares`` a LoRA adapter is trained (:func:`confidently.finetune.finetune`, its validation
rows carved from its own share) on each share of the calibration rows, and calibrated and certified on the
rest of them: the label budget stays the calibration split's. Each adapter folder is kept under
``--cache`` (``finetune-<percent>-adapter``), so a rerun trains nothing again. ``--finetune-probe`` adds
a line with the hidden-state probe read under the adapter, cross-fitted on the same rest rows.

    PYTHONPATH=src python benchmarks/boost.py --data ../shared/datasets/sst2_dev.jsonl --shots 4 16 \\
        --prompts benchmarks/sst2_prompts.jsonl --cache /tmp/boost --out /tmp/boost/table.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from confidently.calibration import cross_fit_predict, make_calibrator
from confidently.scoring.classifier import Classifier
from confidently.data import Dataset, load_dataset, split_dataset
from confidently.errors import CalibrationError
from confidently.finetune import FinetuneConfig, finetune
from confidently.finetune.checkpoint import checkpoint_dir
from confidently.bundle.bundle import read_bundle
from confidently.feedback.recalibration import CalibrationRows
from confidently.workflows.evaluation import FEATURE_METHODS, EvaluationConfig, evaluate_scores
from confidently.workflows.pipeline import prompt_cost, split_for_evaluation
from confidently.scoring.checkpointed import score_datasets
from confidently.tasks.shots import shot_classifier
from confidently.tasks.task import read_prompts
from confidently.decision.thresholds import certify_threshold
from confidently.types import Scores

TARGETS = (0.95, 0.90)
LEVEL = 0.95
SEED = 42


def cost(clf: Classifier, texts: list[str], *, hidden: bool, timing_texts: int) -> dict:
    """Forward passes and tokens per item (:func:`~confidently.workflows.pipeline.prompt_cost`), and milliseconds per
    item: one timed run of ``timing_texts`` texts, every prompt's prefix already cached."""
    clf.score(texts[:2], hidden=hidden)  # warm the prefix caches
    started = time.perf_counter()
    clf.score(texts[:timing_texts], hidden=hidden)
    return {**prompt_cost(clf, texts), "ms_per_text": 1000 * (time.perf_counter() - started) / timing_texts}


def certified_on_test(crossfit: np.ndarray, y_cal: np.ndarray, test: np.ndarray, y_test: np.ndarray,
                      target: float) -> dict:
    """The Learn-Then-Test threshold certified on out-of-fold calibration scores, applied to the test split."""
    cert = certify_threshold(crossfit.max(1), crossfit.argmax(1) == y_cal, target_accuracy=target, level=LEVEL)
    automated = test.max(1) >= cert.threshold if cert.certified else np.zeros(y_test.size, bool)
    right = test.argmax(1) == y_test
    return {"threshold": cert.threshold, "coverage": float(automated.mean()), "n_automated": int(automated.sum()),
            "accuracy_automated": float(right[automated].mean()) if automated.any() else None,
            "certificate": cert.reason}


def row(name: str, evaluation, method: str, labels_used: int, cost_: dict) -> dict:
    """One method of one study: test metrics, and the coverage its certified thresholds reach on test."""
    from sklearn.metrics import roc_auc_score

    result = evaluation.methods[method]
    metrics = result.test["metrics"]
    y_cal, y_test = evaluation.y_calibration, evaluation.y_test
    return {"configuration": name, "method": method, "labels": labels_used,
            "auroc": float(roc_auc_score(y_test, result.test_probs[:, 1])), "accuracy": metrics["accuracy"]["value"],
            "ece": metrics["ece"]["value"], **cost_,
            **{f"at_{t:.2f}": certified_on_test(result.crossfit_probs, y_cal, result.test_probs, y_test, t)
               for t in TARGETS}}


def best_calibrator(evaluation) -> str:
    candidates = [m for m in evaluation.methods if m not in ("raw", *FEATURE_METHODS)]
    return min(candidates, key=lambda m: evaluation.methods[m].crossfit["metrics"]["nll"]["value"])


def budget_curve(method: str, result, cal_x: np.ndarray, y_cal: np.ndarray, test_x: np.ndarray,
                 y_test: np.ndarray, *, sizes: list[int], repeats: int) -> dict[int, dict[float, float]]:
    """Per label count n: mean test coverage, per target, of ``method`` fitted on n random calibration rows
    with its threshold certified on those rows' out-of-fold scores; the whole split is the study's own
    ``result`` (the same folds and seed)."""
    rng = np.random.default_rng(SEED)
    out = {}
    for n in [s for s in sizes if s < y_cal.size]:
        coverages = {t: [] for t in TARGETS}
        for _ in range(repeats):
            idx = rng.choice(y_cal.size, size=n, replace=False)
            x, y = cal_x[idx], y_cal[idx]
            try:
                if method == "raw":
                    oof, test = x, test_x
                elif method in FEATURE_METHODS:
                    combiner, cross_fit = FEATURE_METHODS[method]
                    oof = cross_fit(x, y, n_classes=2, seed=0)
                    test = combiner().fit(x, y, n_classes=2).predict_proba(test_x)
                else:
                    oof = cross_fit_predict(method, x, y, n_splits=5, seed=0)
                    test = make_calibrator(method).fit(x, y).predict_proba(test_x)
            except CalibrationError:
                continue  # too few rows of a class to cross-fit in a small subset
            for t in TARGETS:
                coverages[t].append(certified_on_test(oof, y, test, y_test, t)["coverage"])
        out[n] = {t: float(np.mean(c)) if c else float("nan") for t, c in coverages.items()}
    out[y_cal.size] = {t: certified_on_test(result.crossfit_probs, y_cal, result.test_probs, y_test, t)["coverage"]
                       for t in TARGETS}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--shots", type=int, nargs="*", default=[4, 16])
    parser.add_argument("--prompts", default=str(Path(__file__).with_name("sst2_prompts.jsonl")),
                        help="more prompts for the ensemble lines ('' skips them)")
    parser.add_argument("--cache", default="/tmp/boost")
    parser.add_argument("--out", default=None)
    parser.add_argument("--budget-sizes", type=int, nargs="*", default=[100, 200])
    parser.add_argument("--budget-repeats", type=int, default=2)
    parser.add_argument("--timing-texts", type=int, default=16)
    parser.add_argument("--finetune-shares", type=float, nargs="*", default=[0.5, 0.7],
                        help="shares of the calibration rows a LoRA adapter is trained on (none: skip)")
    parser.add_argument("--finetune-epochs", type=float, default=1.0)
    parser.add_argument("--finetune-learning-rate", type=float, default=FinetuneConfig.learning_rate)
    parser.add_argument("--finetune-patience", type=int, default=FinetuneConfig.patience,
                        help="evaluations without a lower validation loss before stopping (0: never stop early)")
    parser.add_argument("--finetune-probe", action="store_true",
                        help="add a line with the hidden-state probe on the adapter's own hidden states")
    parser.add_argument("--only-finetune", action="store_true",
                        help="only the fine-tuned rows (the other rows' scores are cached by an earlier run)")
    parser.add_argument("--finetune-threads", type=int, default=None,
                        help="CPU threads while training (1 can be faster on a busy machine)")
    args = parser.parse_args()

    started = time.time()
    clf = Classifier(model=args.model, task="sentiment", dtype="float32")
    # checked before anything is scored
    ensemble_clf = clf.asking(read_prompts(args.prompts, clf.task)) if args.prompts else None
    data = load_dataset(args.data, labels=clf.labels, require_labels=True)
    calibration, test = split_for_evaluation(data, seed=SEED)
    y_cal, y_test = calibration.label_indices(clf.labels), test.label_indices(clf.labels)
    config = EvaluationConfig(target_accuracy=TARGETS[0], budget_sizes=(), budget_repeats=1,
                              budget_methods=("platt",), n_resamples=200)
    cache, texts = Path(args.cache), list(test.texts)
    rows, curves = [], {}

    def study(cal: Scores, y: np.ndarray, on_test: Scores, hidden_method: str | None = None):
        hidden = None if hidden_method is None else (cal.hidden, on_test.hidden)
        return evaluate_scores(cal.probs, y, on_test.probs, y_test, labels=clf.labels, hidden=hidden,
                               hidden_method=hidden_method or "probe", config=config)

    def add(name: str, evaluation, method: str, labels_used: int, cost_: dict, cal_x, test_x, *,
            budget: bool = True) -> None:
        rows.append(row(name, evaluation, method, labels_used, cost_))
        if budget:
            curves[name] = budget_curve(method, evaluation.methods[method], cal_x, evaluation.y_calibration, test_x,
                                        y_test, sizes=args.budget_sizes, repeats=args.budget_repeats)
        print(f"[{time.time() - started:.0f} s] {name}: done", flush=True)

    if not args.only_finetune:
        zero = score_datasets(clf, {"calibration": calibration, "test": test}, cache / "zs-cache", hidden=True)
        zero_cost = cost(clf, texts, hidden=False, timing_texts=args.timing_texts)
        zs = study(zero["calibration"], y_cal, zero["test"], "probe")
        add("zero-shot, raw scores", zs, "raw", 0, zero_cost, zero["calibration"].probs, zero["test"].probs)
        best = best_calibrator(zs)
        add("zero-shot, calibrated", zs, best, len(calibration), zero_cost, zero["calibration"].probs, zero["test"].probs)
        add("zero-shot + hidden-state probe", zs, "probe", len(calibration),
            cost(clf, texts, hidden=True, timing_texts=args.timing_texts), zero["calibration"].hidden,
            zero["test"].hidden)

        # The prompt ensemble: the task's own prompt (the zero-shot scores above) and each prompt of --prompts.
        if ensemble_clf is not None:
            per_prompt = ensemble_clf.prompt_classifiers
            assert per_prompt[0].fingerprint() == clf.fingerprint()
            parts = [zero]
            for asked in per_prompt[1:]:
                parts.append(score_datasets(asked, {"calibration": calibration, "test": test},
                                            cache / f"prompt-{asked.task.name}-cache", hidden=True))
                alone = study(parts[-1]["calibration"], y_cal, parts[-1]["test"])
                best = best_calibrator(alone)
                add(f"prompt '{asked.task.name}' alone, calibrated", alone, best, len(calibration),
                    cost(asked, texts, hidden=False, timing_texts=args.timing_texts),
                    parts[-1]["calibration"].probs, parts[-1]["test"].probs)
            combined = {split: Scores.ensemble([p[split] for p in parts], keep_masses=True) for split in ("calibration", "test")}
            ensemble = study(combined["calibration"], y_cal, combined["test"], "ensemble")
            ensemble_cost = cost(ensemble_clf, texts, hidden=False, timing_texts=args.timing_texts)
            add(f"ensemble of {len(parts)} prompts, mean mass, calibrated", ensemble, best_calibrator(ensemble),
                len(calibration), ensemble_cost, combined["calibration"].probs, combined["test"].probs)
            add(f"ensemble of {len(parts)} prompts, fitted combiner", ensemble, "ensemble", len(calibration), ensemble_cost,
                combined["calibration"].hidden, combined["test"].hidden)

        for k in args.shots:
            shot_clf, rest, _ = shot_classifier(clf, calibration, k, seed=SEED)
            shot = score_datasets(shot_clf, {"calibration": rest, "test": test}, cache / f"shots{k}-cache", hidden=True)
            y_rest = rest.label_indices(clf.labels)
            shot_study = study(shot["calibration"], y_rest, shot["test"], "probe")
            best = best_calibrator(shot_study)
            add(f"{k}-shot prompt, calibrated", shot_study, best, len(calibration),
                cost(shot_clf, texts, hidden=False, timing_texts=args.timing_texts),
                shot["calibration"].probs, shot["test"].probs)
            add(f"{k}-shot prompt + hidden-state probe", shot_study, "probe", len(calibration),
                cost(shot_clf, texts, hidden=True, timing_texts=args.timing_texts),
                shot["calibration"].hidden, shot["test"].hidden)

    for share in args.finetune_shares:
        train_part, rest = share_split(calibration, share)
        percent = round(100 * share)  # in the folder name: an adapter's name may not hold a dot
        adapter = tuned_adapter(clf, train_part, rest, cache / f"finetune-{percent}-adapter", args)
        training = read_training(adapter)
        # The rest rows' raw scores under the adapter are the adapter bundle's own calibration rows (scored
        # by finetune() itself), so only the test rows are scored here.
        rest_rows = CalibrationRows.from_bundle(read_bundle(adapter))
        assert np.array_equal(rest_rows.y, rest.label_indices(clf.labels))
        previous = clf.backend.active_adapter
        clf.backend.load_adapter(adapter)
        try:
            tuned = score_datasets(clf, {"test": test}, cache / f"finetune-{percent}-cache")["test"]
            tuned_cost = cost(clf, texts, hidden=False, timing_texts=args.timing_texts)
        finally:
            clf.backend.set_adapter(previous)
        tuned_study = evaluate_scores(rest_rows.probs, rest_rows.y, tuned.probs, y_test, labels=clf.labels,
                                      config=config)
        add(f"LoRA on {share:.0%} of the calibration rows ({training['train_rows']} train + "
            f"{training['validation_rows']} validation, {training['steps_run']} steps, "
            f"{training['train_seconds']:.0f} s), calibrated on the other {len(rest)}", tuned_study,
            best_calibrator(tuned_study), len(calibration), tuned_cost, rest_rows.probs, tuned.probs,
            budget=False)  # its adapter was trained on a fixed share: subsets of the rest would not be comparable
        rows[-1]["training"] = training
        if args.finetune_probe:
            # The probe reads the adapter's hidden states: the rest and test rows scored again, keeping them.
            clf.backend.load_adapter(adapter)
            try:
                tuned = score_datasets(clf, {"rest": rest, "test": test}, cache / f"finetune-{percent}-hidden-cache",
                                       hidden=True)
                probe_cost = cost(clf, texts, hidden=True, timing_texts=args.timing_texts)
            finally:
                clf.backend.set_adapter(previous)
            probed = evaluate_scores(tuned["rest"].probs, rest_rows.y, tuned["test"].probs, y_test, labels=clf.labels,
                                     hidden=(tuned["rest"].hidden, tuned["test"].hidden), hidden_method="probe",
                                     config=config)
            add(f"LoRA on {share:.0%} of the calibration rows + hidden-state probe on the other {len(rest)}",
                probed, "probe", len(calibration), probe_cost, tuned["rest"].hidden, tuned["test"].hidden, budget=False)
            rows[-1]["training"] = training

    write_tables(args, rows, curves, calibration, test, started)


def share_split(calibration: Dataset, share: float) -> tuple[Dataset, Dataset]:
    """``share`` of the calibration rows to fine-tune on and the rest to calibrate on (stratified, seeded)."""
    parts = split_dataset(calibration, fractions=(share, 1.0 - share, 0.0), seed=SEED)
    return parts.train, parts.calibration


def tuned_adapter(clf: Classifier, train_part: Dataset, rest: Dataset, folder: Path, args) -> Path:
    """The adapter trained on ``train_part`` (validation rows carved from it), calibrated on ``rest``;
    trained only when ``folder`` holds no finished adapter (an interrupted run resumes)."""
    if not (folder / "manifest.json").exists():
        config = FinetuneConfig(model=args.model, task=clf.task.name, dtype="float32", epochs=args.finetune_epochs,
                                learning_rate=args.finetune_learning_rate, patience=args.finetune_patience,
                                batch_size=8, grad_accum=1, eval_every=8, threads=args.finetune_threads,
                                seed=SEED)
        finetune(train_part, folder, config, calibration=rest, backend=clf.backend,
                 resume=checkpoint_dir(folder).exists(), progress=True)
    return folder


def read_training(adapter: Path) -> dict:
    """Rows, steps and seconds of an adapter's training, from its manifest."""
    metadata = json.loads((adapter / "manifest.json").read_text(encoding="utf-8"))
    sizes = metadata["splits"]["sizes"]
    return {"train_rows": sizes["train"], "validation_rows": sizes["validation"],
            "steps_run": metadata["validation"]["steps_run"], "best_step": metadata["validation"]["best_step"],
            "total_steps": metadata["hyperparameters"]["total_steps"],
            "stopped_early": metadata["validation"]["stopped_early"],
            "train_seconds": metadata["training"]["train_seconds"]}


def coverage_cell(cell: dict) -> str:
    """A certified threshold's test coverage: share automated (threshold t, rows automated at their accuracy)."""
    if cell["threshold"] is None:
        return "none"
    return (f"{cell['coverage']:.1%} (t={cell['threshold']:.3f}, {cell['n_automated']} at "
            f"{cell['accuracy_automated']:.3f})" if cell["n_automated"] else f"0.0% (t={cell['threshold']:.3f})")


def method_table(rows: list[dict]) -> list[str]:
    """The side-by-side table of :func:`row` dicts, as Markdown lines."""
    lines = ["| configuration | method | labels | AUROC | accuracy | ECE | coverage at 95% (test) | coverage at 90% "
             "(test) | forward passes | tokens/item (past prefix) | ms/item |", "|" + " --- |" * 11]
    for r in rows:
        lines.append(f"| {r['configuration']} | {r['method']} | {r['labels']} | {r['auroc']:.3f} | "
                     f"{r['accuracy']:.3f} | {r['ece']:.3f} | {coverage_cell(r['at_0.95'])} | "
                     f"{coverage_cell(r['at_0.90'])} | {r['forward_passes_per_item']} | "
                     f"{r['prompt_tokens_per_item']:.0f} ({r['tokens_past_prefix_per_item']:.0f}) | "
                     f"{r['ms_per_text']:.0f} |")
    return lines


def write_tables(args, rows: list[dict], curves: dict, calibration, test, started: float) -> None:
    lines = method_table(rows)
    sizes = list(next(iter(curves.values()), {}))
    curve = []
    if curves:  # none with --only-finetune: the fine-tuned rows have no label-budget curve
        curve = ["", "Label budget: mean test coverage of the certified threshold at 95% / 90% with n calibration "
                 f"labels ({args.budget_repeats} random subsets per n below the full split; the full split once):", "",
                 "| configuration | " + " | ".join(f"n={n}" for n in sizes) + " |", "|" + " --- |" * (len(sizes) + 1)]
    for name, by_size in curves.items():
        curve.append(f"| {name} | " + " | ".join(f"{c[0.95]:.1%} / {c[0.90]:.1%}" for c in by_size.values()) + " |")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    summary = (f"{args.data}: {len(calibration)} calibration + {len(test)} test rows (50/50 split, seed {SEED}), "
               f"model {args.model} float32 on CPU; load average at the end {load}; wall time "
               f"{time.time() - started:.0f} s. Coverage cells: share of test rows automated (threshold t, rows "
               "automated at their accuracy); 'none': Learn-Then-Test certified no threshold on the calibration rows.")
    text = "\n".join([summary, "", *lines, *curve])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(json.dumps({"rows": rows, "budget": {
            name: {str(n): {str(t): v for t, v in c.items()} for n, c in by_size.items()}
            for name, by_size in curves.items()}}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
