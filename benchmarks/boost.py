"""Side by side on the same held-out rows: zero-shot, the hidden-state probe and few-shot prompts.

Splits one labelled file 50/50 into calibration and test (``split_for_evaluation``, seed 42), scores
both splits once per prompt (cached under ``--cache``, hidden states kept), and runs the calibration
study (:func:`confidently.evaluation.evaluate_scores`) for each configuration. Everything is chosen on
the calibration rows (the calibrator by cross-fitted log-loss, the Learn-Then-Test threshold on
out-of-fold scores); the test rows only measure. Few-shot examples come from the calibration rows,
which then calibrate without them.

    PYTHONPATH=src python benchmarks/boost.py --data ../shared/datasets/sst2_dev.jsonl --shots 8 \
        --cache /tmp/boost --out /tmp/boost/table.md
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from confidently.classifier import Classifier
from confidently.data import load_dataset
from confidently.evaluation import EvaluationConfig, evaluate_scores
from confidently.pipeline import score_datasets, split_for_evaluation
from confidently.shots import choose_shots, with_shots

TIMING_TEXTS = 24


def cost(clf: Classifier, texts: list[str], *, hidden: bool) -> dict:
    """Milliseconds per text (one timed batch run of ``TIMING_TEXTS`` texts, prefix already cached) and
    tokens per text: the whole prompt, and what is computed per text once the shared prefix is cached."""
    clf.score(texts[:2], hidden=hidden)  # warm the prefix cache
    started = time.perf_counter()
    clf.score(texts[:TIMING_TEXTS], hidden=hidden)
    ms = 1000 * (time.perf_counter() - started) / TIMING_TEXTS
    prefix = clf.backend.count_tokens(clf.prefix)
    full = [clf.backend.count_tokens(clf.prompt(t)) for t in texts]
    return {"ms_per_text": ms, "prompt_tokens": float(np.mean(full)), "tokens_past_prefix": float(np.mean(full) - prefix)}


def row(name: str, evaluation, method: str | None, labels_used: int, cost_: dict) -> dict:
    """The shipped (or named) method's test metrics and the certified policy's coverage on test."""
    chosen = method or evaluation.best
    result = evaluation.methods[chosen]
    metrics = result.test["metrics"]
    # the policy is certified on the chosen method's out-of-fold calibration scores, measured on test
    from confidently.evaluation import _apply_policy
    from confidently.thresholds import DecisionPolicy

    policy = DecisionPolicy.from_certificate(result.chosen.certified)
    on_test = _apply_policy(policy, result.test_probs, evaluation.y_test)
    return {"configuration": name, "calibrator": chosen, "labels": labels_used,
            "auroc": metrics["auroc"]["value"], "accuracy": metrics["accuracy"]["value"],
            "ece": metrics["ece"]["value"], "threshold": policy.threshold,
            "coverage": on_test["coverage"], "n_automated": on_test["n_automated"],
            "accuracy_automated": on_test["accuracy_automated"], **cost_}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--shots", type=int, nargs="*", default=[8])
    parser.add_argument("--cache", default="/tmp/boost")
    parser.add_argument("--out", default=None)
    parser.add_argument("--target", type=float, default=0.95)
    args = parser.parse_args()

    started = time.time()
    clf = Classifier(model=args.model, task="sentiment", dtype="float32")
    data = load_dataset(args.data, labels=clf.labels, require_labels=True)
    calibration, test = split_for_evaluation(data, seed=42)
    y_cal, y_test = calibration.label_indices(clf.labels), test.label_indices(clf.labels)
    config = EvaluationConfig(target_accuracy=args.target, budget_repeats=5, n_resamples=200)
    cache = Path(args.cache)
    rows = []

    scores = score_datasets(clf, {"calibration": calibration, "test": test}, cache / "zs-cache", hidden=True)
    zero_cost = cost(clf, list(test.texts), hidden=False)
    zero = evaluate_scores(scores["calibration"].probs, y_cal, scores["test"].probs, y_test, labels=clf.labels,
                           hidden=(scores["calibration"].hidden, scores["test"].hidden), config=config)
    rows.append(row("zero-shot, raw scores", zero, "raw", 0, zero_cost))
    calibrators = [m for m in zero.methods if m not in ("raw", "probe")]
    best_calibrator = min(calibrators, key=lambda m: zero.methods[m].crossfit["metrics"]["nll"]["value"])
    rows.append(row("zero-shot, calibrated", zero, best_calibrator, len(calibration), zero_cost))
    rows.append(row("hidden-state probe", zero, "probe", len(calibration), cost(clf, list(test.texts), hidden=True)))

    for k in args.shots:
        shots = choose_shots(y_cal, k, n_classes=len(clf.labels), seed=42, texts=calibration.texts)
        task = with_shots(clf.task, [(calibration.texts[i], int(y_cal[i])) for i in shots.indices])
        shot_clf = Classifier(backend=clf.backend, task=task)
        rest = calibration.subset(list(shots.rest))
        shot_scores = score_datasets(shot_clf, {"calibration": rest, "test": test}, cache / f"shots{k}-cache",
                                     hidden=True)
        y_rest = rest.label_indices(clf.labels)
        study = evaluate_scores(shot_scores["calibration"].probs, y_rest, shot_scores["test"].probs, y_test,
                                labels=clf.labels, hidden=(shot_scores["calibration"].hidden,
                                                           shot_scores["test"].hidden), config=config)
        shot_cost = cost(shot_clf, list(test.texts), hidden=False)
        shot_calibrators = [m for m in study.methods if m not in ("raw", "probe")]
        best = min(shot_calibrators, key=lambda m: study.methods[m].crossfit["metrics"]["nll"]["value"])
        rows.append(row(f"{k}-shot prompt, calibrated", study, best, len(calibration), shot_cost))
        rows.append(row(f"{k}-shot prompt + probe", study, "probe", len(calibration),
                        cost(shot_clf, list(test.texts), hidden=True)))

    header = ("| configuration | calibrator | labels | AUROC | accuracy | ECE | certified threshold | "
              f"coverage at {args.target:.0%} (test) | accuracy of automated | ms/text | tokens/text (past prefix) |")
    lines = [header, "|" + " --- |" * 11]
    for r in rows:
        threshold = "none" if r["threshold"] is None else f"{r['threshold']:.3f}"
        automated = "-" if r["accuracy_automated"] is None else f"{r['accuracy_automated']:.3f} ({r['n_automated']})"
        lines.append(f"| {r['configuration']} | {r['calibrator']} | {r['labels']} | {r['auroc']:.3f} | "
                     f"{r['accuracy']:.3f} | {r['ece']:.3f} | {threshold} | {r['coverage']:.1%} | {automated} | "
                     f"{r['ms_per_text']:.0f} | {r['prompt_tokens']:.0f} ({r['tokens_past_prefix']:.0f}) |")
    summary = (f"{args.data}: {len(calibration)} calibration + {len(test)} test rows (50/50 split, seed 42), "
               f"model {args.model} float32 on CPU; wall time {time.time() - started:.0f} s")
    text = "\n".join([summary, "", *lines])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
