"""Side by side on the same held-out rows: zero-shot, the hidden-state probe and few-shot prompts.

Splits one labelled file 50/50 into calibration and test (``split_for_evaluation``, seed 42), scores
both splits once per prompt (cached under ``--cache``, hidden states kept), and runs the calibration
study (:func:`confidently.workflows.evaluation.evaluate_scores`) for each configuration. Everything is chosen on
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

from confidently.scoring.classifier import Classifier
from confidently.data import load_dataset
from confidently.workflows.evaluation import EvaluationConfig, evaluate_scores
from confidently.workflows.pipeline import score_datasets, split_for_evaluation
from confidently.calibration.ensemble import ensemble_features
from confidently.calibration.probe import HiddenStateProbe, cross_fit_probe
from confidently.tasks.shots import shot_classifier
from confidently.decision.thresholds import certify_threshold

TIMING_TEXTS = 16


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
    from confidently.workflows.evaluation import _apply_policy
    from confidently.decision.policy import DecisionPolicy

    policy = DecisionPolicy.from_certificate(result.chosen.certified)
    on_test = _apply_policy(policy, result.test_probs, evaluation.y_test)
    from sklearn.metrics import roc_auc_score

    y = evaluation.y_test
    # how well the scores separate the classes (one-vs-rest, macro, for more than two)
    auroc = (roc_auc_score(y, result.test_probs[:, 1]) if result.test_probs.shape[1] == 2
             else roc_auc_score(y, result.test_probs, multi_class="ovr"))
    return {"configuration": name, "calibrator": chosen, "labels": labels_used,
            "auroc": float(auroc), "accuracy": metrics["accuracy"]["value"],
            "ece": metrics["ece"]["value"], "threshold": policy.threshold,
            "coverage": on_test["coverage"], "n_automated": on_test["n_automated"],
            "accuracy_automated": on_test["accuracy_automated"], **cost_}


def probe_budget(hidden_cal, y_cal, hidden_test, y_test, target: float, sizes=(100, 200), repeats=2,
                 seed=0) -> dict[int, list[tuple[float, int, int]]]:
    """Per label count: (coverage, automated, right) on test of a probe fitted on a random subset, its
    Learn-Then-Test threshold certified on the subset's out-of-fold probe scores."""
    rng = np.random.default_rng(seed)
    out: dict[int, list] = {}
    for n in sizes:
        for _ in range(repeats):
            idx = rng.choice(y_cal.size, size=n, replace=False)
            oof = cross_fit_probe(hidden_cal[idx], y_cal[idx], n_classes=2, seed=seed)
            cert = certify_threshold(oof.max(1), oof.argmax(1) == y_cal[idx], target_accuracy=target, level=0.95)
            probs = HiddenStateProbe(seed=seed).fit(hidden_cal[idx], y_cal[idx], n_classes=2).predict_proba(hidden_test)
            automated = (probs.max(1) >= cert.threshold) if cert.certified else np.zeros(y_test.size, bool)
            out.setdefault(n, []).append((float(automated.mean()), int(automated.sum()),
                                          int((probs.argmax(1) == y_test)[automated].sum())))
    return out


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

    budget = probe_budget(scores["calibration"].hidden, y_cal, scores["test"].hidden, y_test, args.target)
    for k in args.shots:
        shot_clf, rest, shots = shot_classifier(clf, calibration, k, seed=42)
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
        # Two prompts (zero-shot and k-shot), their log class masses combined by the cross-fitted logistic.
        zero_rest = scores["calibration"].subset(list(shots.rest))
        combined = evaluate_scores(shot_scores["calibration"].probs, y_rest, shot_scores["test"].probs, y_test,
                                   labels=clf.labels, config=EvaluationConfig(
                                       methods=(), target_accuracy=args.target, budget_repeats=1, n_resamples=200),
                                   hidden=(ensemble_features([zero_rest.mass, shot_scores["calibration"].mass]),
                                           ensemble_features([scores["test"].mass, shot_scores["test"].mass])))
        both = {key: zero_cost[key] + shot_cost[key] for key in zero_cost}
        rows.append(row(f"ensemble: zero-shot + {k}-shot prompts", combined, "probe", len(calibration), both))

    header = ("| configuration | calibrator | labels | class AUROC | accuracy | ECE | certified threshold | "
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
    curve = ["", "Probe label budget (random calibration subsets; threshold certified on the subset's out-of-fold "
             "scores; coverage and accuracy of automated measured on the whole test split):", "",
             "| labels | repeats | mean coverage | accuracy of automated (pooled) |", "| --- | --- | --- | --- |"]
    for n, runs in budget.items():
        automated = sum(r[1] for r in runs)
        right = sum(r[2] for r in runs)
        curve.append(f"| {n} | {len(runs)} | {np.mean([r[0] for r in runs]):.1%} | "
                     f"{(right / automated if automated else float('nan')):.3f} ({automated}) |")
    text = "\n".join([summary, "", *lines, *curve])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
